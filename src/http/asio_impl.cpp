// Compiles Asio and Beast once for the whole program (BOOST_*_SEPARATE_COMPILATION is set
// on every target that links zapd::http), instead of in every translation unit.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
