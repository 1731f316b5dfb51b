#pragma once
#include <string>

#include "mvadapter/core/error.h"

namespace mva {

/// A request the server refuses, with the HTTP status to answer (400 bad parameter, 404 unknown
/// id or run, 409 runs that cannot be compared); the message goes to the client as
/// {"error": message}.
struct ApiError : Error {
  ApiError(int status, const std::string& message) : Error(message), status(status) {}
  int status;
};

}  // namespace mva
