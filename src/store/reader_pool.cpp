#include "zapd/store/reader_pool.hpp"

namespace zapd::store {

result<std::unique_ptr<reader_pool>> reader_pool::open(const std::string& path, std::size_t size) {
  std::unique_ptr<reader_pool> p(new reader_pool());
  p->conns_.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    auto c = connection::open(path, open_mode::read_only);
    if (!c) return std::move(c).err();
    p->conns_.push_back(std::move(c).value());
  }
  for (auto& c : p->conns_) p->free_.push_back(&c);
  return p;
}

connection* reader_pool::acquire() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [this] { return !free_.empty(); });
  connection* c = free_.back();
  free_.pop_back();
  return c;
}

void reader_pool::release(connection* c) {
  {
    std::lock_guard lk(mu_);
    free_.push_back(c);
  }
  cv_.notify_one();
}

}  // namespace zapd::store
