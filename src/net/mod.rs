//! Listener plumbing shared by the proxy, the admin listener and the backend.
