#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "zapd/core/errc.hpp"

namespace zapd {

/// One problem with one input field, e.g. {"actions[1].actionMetadata.url", "required"}.
struct field_error {
  std::string path;
  std::string message;
  bool operator==(const field_error&) const = default;
};

/// An expected failure: a code and a message a user can act on, and for validation failures
/// the list of fields at fault (rendered as `error.details`).
struct error {
  errc code = errc::internal;
  std::string message;
  std::vector<field_error> details;
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message), {}}; }

/// Either a T or an `error`. A small stand-in for C++23's std::expected.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const& { assert(!ok()); return std::get<1>(v_); }
  error&& err() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

/// `result<void>`: success carries nothing.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const error& err() const& { assert(!ok_); return e_; }
  error&& err() && { assert(!ok_); return std::move(e_); }

 private:
  error e_;
  bool ok_ = true;
};

using status = result<void>;

}  // namespace zapd
