//! In-memory ECI-compatible container-group service (filled in by the backend work).
