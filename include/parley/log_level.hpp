// SPDX-License-Identifier: MIT
// How much a log line matters: the one level type shared by the core's hooks and the tools' logger.
#pragma once

namespace parley {

enum class log_level { debug, info, warn, error };

}  // namespace parley
