//! API tests (tower oneshot, no sockets).
