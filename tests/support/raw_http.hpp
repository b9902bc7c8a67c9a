#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace zapd::test {

/// What a server answered on a raw connection, and whether and when it closed it
/// (`raw_exchange` in zapd_process.hpp returns the bytes alone).
struct raw_answer {
  std::string answer;
  bool closed = false;                 // the server closed the connection (not our read timeout)
  std::chrono::milliseconds waited{0};  // from the last byte sent to the end of the answer
};

/// Sends `bytes` (exactly, framing errors included) on a new connection to 127.0.0.1:`port`,
/// then reads until the server closes it or `patience` passes.
inline raw_answer send_raw_until_close(std::uint16_t port, const std::string& bytes,
                             std::chrono::seconds patience = std::chrono::seconds(5)) {
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  timeval tv{static_cast<time_t>(patience.count()), 0};
  setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!bytes.empty()) asio::write(sock, asio::buffer(bytes));
  const auto sent = std::chrono::steady_clock::now();
  raw_answer out;
  std::array<char, 4096> buf{};
  for (;;) {
    boost::system::error_code ec;
    auto n = sock.read_some(asio::buffer(buf), ec);
    out.answer.append(buf.data(), n);
    if (ec) {
      out.closed = ec == asio::error::eof || ec == asio::error::connection_reset;
      break;
    }
  }
  out.waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
  return out;
}

}  // namespace zapd::test
