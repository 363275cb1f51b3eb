// The live view's page, served by GET / and GET /ui.
#pragma once

namespace vigil::live {

// A self-contained HTML document (inline style and script, nothing fetched from elsewhere)
// that subscribes to /v1/events and shows its updates.
const char* live_page_html();

}  // namespace vigil::live
