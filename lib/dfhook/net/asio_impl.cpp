// The one translation unit that compiles Asio and Beast (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set for the net layer). Every other file of the net
// layer includes only the declarations, which keeps each of them seconds and hundreds of
// megabytes cheaper to compile. Headers of the project never include Asio or Beast.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
