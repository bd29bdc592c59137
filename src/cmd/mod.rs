//! One module per subcommand; each validates, calls the library and prints.

pub mod adapt;
pub mod calibrate;
pub mod entropy;
pub mod eval;
pub mod plot;
pub mod segment;
pub mod tables;
pub mod train;
pub mod verify;
