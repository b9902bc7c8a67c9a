#include "zapd/kafka/kafka.hpp"
