#include "zapd/queue/queue.hpp"

namespace zapd::queue {

queue::~queue() = default;
store_publisher::~store_publisher() = default;
handoff::~handoff() = default;

}  // namespace zapd::queue
