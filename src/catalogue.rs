//! The ECI 2018-08-08 action catalogue.
