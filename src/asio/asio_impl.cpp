// Compiles Asio and Beast once for the whole program. BOOST_*_SEPARATE_COMPILATION is set on
// zapd::asio and so on every target that links it: every module that uses Asio (http,
// outbound) must link zapd::asio rather than compile Asio header-only, or the program holds
// two copies of Asio's error categories and service ids (an ODR violation that breaks
// error_code comparisons across modules).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
