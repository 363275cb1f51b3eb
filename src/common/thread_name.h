// Names the calling thread (as top -H, perf and gdb show it). Linux keeps 15 characters.
#pragma once

#include <pthread.h>

#include <string>

namespace vigil {

inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace vigil
