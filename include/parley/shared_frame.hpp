// SPDX-License-Identifier: MIT
// An encoded outgoing frame, built once per message and shared by every recipient and replay ring.
#pragma once

#include <memory>
#include <string>

namespace parley {

using shared_frame = std::shared_ptr<const std::string>;

[[nodiscard]] inline shared_frame make_shared_frame(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace parley
