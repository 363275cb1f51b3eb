// For ThreadSanitizer builds only: librdkafka uses C11 threads (thrd_*, mtx_*, cnd_*), which
// glibc implements by calling its pthread functions internally, where the sanitizer runtimes
// of this Debian (GCC 12, clang 14) do not see them: librdkafka's threads would run unknown to
// TSan (its allocator crashes on their first malloc) and their locks would be invisible (false
// races on everything librdkafka hands over). Defined in the test executable, these take
// precedence over glibc's for librdkafka and forward to the pthread functions TSan intercepts.
// glibc's C11 types wrap the pthread ones (thrd_t is a pthread_t, mtx_t and cnd_t begin with
// a pthread_mutex_t and a pthread_cond_t), so the forwarding is layout-compatible.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t func;
  void* arg;
};

void* run(void* p) {
  const Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

int result(int err) {
  if (err == 0) return thrd_success;
  if (err == ETIMEDOUT) return thrd_timedout;
  if (err == EBUSY) return thrd_busy;
  if (err == ENOMEM || err == EAGAIN) return thrd_nomem;
  return thrd_error;
}

pthread_mutex_t* native(mtx_t* m) {
  return reinterpret_cast<pthread_mutex_t*>(m);
}
pthread_cond_t* native(cnd_t* c) {
  return reinterpret_cast<pthread_cond_t*>(c);
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thread, thrd_start_t func, void* arg) {
  auto* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return thrd_nomem;
  const int err = pthread_create(reinterpret_cast<pthread_t*>(thread), nullptr, &run, start);
  if (err != 0) delete start;
  return result(err);
}

int thrd_join(thrd_t thread, int* res) {
  void* value = nullptr;
  const int err = pthread_join(static_cast<pthread_t>(thread), &value);
  if (err == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return result(err);
}

int thrd_detach(thrd_t thread) {
  return result(pthread_detach(static_cast<pthread_t>(thread)));
}

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if ((type & mtx_recursive) != 0) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int err = pthread_mutex_init(native(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return result(err);
}
int mtx_lock(mtx_t* m) {
  return result(pthread_mutex_lock(native(m)));
}
int mtx_trylock(mtx_t* m) {
  return result(pthread_mutex_trylock(native(m)));
}
int mtx_timedlock(mtx_t* m, const struct timespec* until) {
  return result(pthread_mutex_timedlock(native(m), until));
}
int mtx_unlock(mtx_t* m) {
  return result(pthread_mutex_unlock(native(m)));
}
void mtx_destroy(mtx_t* m) {
  pthread_mutex_destroy(native(m));
}

int cnd_init(cnd_t* c) {
  return result(pthread_cond_init(native(c), nullptr));
}
int cnd_signal(cnd_t* c) {
  return result(pthread_cond_signal(native(c)));
}
int cnd_broadcast(cnd_t* c) {
  return result(pthread_cond_broadcast(native(c)));
}
int cnd_wait(cnd_t* c, mtx_t* m) {
  return result(pthread_cond_wait(native(c), native(m)));
}
int cnd_timedwait(cnd_t* c, mtx_t* m, const struct timespec* until) {
  return result(pthread_cond_timedwait(native(c), native(m), until));
}
void cnd_destroy(cnd_t* c) {
  pthread_cond_destroy(native(c));
}

}  // extern "C"
