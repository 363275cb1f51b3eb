// Errors as values: Status for operations without a result, Result<T> for those with one.
// Expected failures (bad input, a missing file, a peer that is down) travel as these across
// threads; exceptions from third-party libraries are caught at the component edge and turned
// into a Status. Broken invariants abort instead (see VIGIL_CHECK).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

// What kind of failure a Status is, for the edge that answers for it (an HTTP status, a
// retry): the caller decides by the code, never by the message's text.
enum class StatusCode {
  kOk,
  kUnknown,             // not classified (Status::Error without a code)
  kInvalidArgument,     // the input is wrong (HTTP 400)
  kNotFound,            // what was named does not exist (404)
  kFailedPrecondition,  // not allowed in the current state (409)
  kUnavailable,         // try again later: shutting down, a dependency down (503)
  kInternal,            // a broken invariant or an unexpected failure (500)
};

class Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status Error(std::string message) {
    return Status(StatusCode::kUnknown, std::move(message));
  }
  static Status Error(StatusCode code, std::string message) {
    return Status(code == StatusCode::kOk ? StatusCode::kUnknown : code, std::move(message));
  }

  bool ok() const { return !message_.has_value(); }
  StatusCode code() const { return code_; }
  explicit operator bool() const { return ok(); }
  // The error message; empty for an ok status.
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::optional<std::string> message_;
};

// Result<T> holds either a T or an error message.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT(google-explicit-constructor)
  Result(Status error) : v_(std::move(error)) {   // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) std::abort();  // a Result built from an ok Status has no value
  }
  static Result Error(std::string message) { return Result(Status::Error(std::move(message))); }
  static Result Error(StatusCode code, std::string message) {
    return Result(Status::Error(code, std::move(message)));
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const std::string& error() const { return std::get<Status>(v_).message(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] inline void check_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "vigil: invariant violated: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace vigil

// Aborts loudly when an invariant is broken. Not for input validation.
#define VIGIL_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::vigil::check_failed(#cond, __FILE__, __LINE__))
