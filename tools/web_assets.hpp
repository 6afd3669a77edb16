// SPDX-License-Identifier: MIT
// The web page's files (web/), compiled into parley-tools by cmake/parley_embed_web.cmake.
#pragma once

#include <parley/web_page.hpp>

#include <vector>

namespace parley_tools {

// Every file of web/ by name; the bytes live as long as the program.
const std::vector<parley::web_asset>& web_assets();

}  // namespace parley_tools
