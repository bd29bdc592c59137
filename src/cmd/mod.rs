//! One module per subcommand; each validates, calls the library and prints.

pub mod entropy;
pub mod segment;
pub mod train;
pub mod verify;
