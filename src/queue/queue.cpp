#include "zapd/queue/queue.hpp"

namespace zapd::queue {

queue::~queue() = default;
store_publisher::~store_publisher() = default;

}  // namespace zapd::queue
