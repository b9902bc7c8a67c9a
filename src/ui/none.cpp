// The asset table of a build without the web UI (-DZAPD_WITH_UI=OFF).
#include "zapd/ui/assets.hpp"

namespace zapd::ui {

const std::vector<asset>& embedded() {
  static const std::vector<asset> none;
  return none;
}

}  // namespace zapd::ui
