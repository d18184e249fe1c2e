// A small blocking HTTPS GET for documents sluice fetches off the data path (an
// identity provider's discovery document and JWKS): TLS 1.2+, the server's certificate
// verified against a CA file or the system store and matched to the URL's host, the
// response body capped, every step bounded by a timeout. HTTP/1.0 (no chunked bodies,
// no keep-alive), redirects are not followed.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace sluice::core {

struct HttpsRequest {
  std::string url;      // https://host[:port]/path
  std::string ca_file;  // "" = the system's CA store
  size_t max_body_bytes = 256 * 1024;
  std::chrono::milliseconds timeout{5000};  // connect, handshake and each read
};

// Fetches request.url into `body`. False with `error` (one sentence: which step
// failed and why) unless the server answered 200 with a body within the cap.
bool https_get(const HttpsRequest& request, std::string& body, std::string& error);

}  // namespace sluice::core
