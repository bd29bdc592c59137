//! The burn backends that training can run on, chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

use crate::error::ModelError;

/// A burn backend. `Flex` (pure-Rust CPU) is always compiled in; `Ndarray` and `Wgpu` need the
/// cargo features `ndarray` and `wgpu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// burn-flex, the default CPU backend (multi-threaded with rayon, SIMD kernels).
    #[default]
    Flex,
    /// burn-ndarray (deprecated upstream; cargo feature `ndarray`).
    Ndarray,
    /// burn-wgpu: a GPU through Vulkan, Metal or DirectX (cargo feature `wgpu`).
    Wgpu,
}

impl Backend {
    /// Every backend name, as accepted by [`FromStr`].
    pub const NAMES: [&'static str; 3] = ["flex", "ndarray", "wgpu"];

    /// The backend's name (`flex`, `ndarray`, `wgpu`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether this build has the backend compiled in.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => true,
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backend's device (without autodiff). For wgpu the first call initialises the GPU
    /// runtime and later calls reuse it.
    ///
    /// # Errors
    /// [`ModelError::Backend`] when the backend is not compiled in ("rebuild with
    /// `--features ...`") or, for wgpu, when no adapter can be found.
    pub fn device(self) -> Result<Device, ModelError> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => {
                #[allow(deprecated)]
                let device = Device::ndarray();
                Ok(device)
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_device(),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::Backend(format!(
                "this build has no {0} backend; rebuild with --features {0}",
                other.name()
            ))),
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, ModelError> {
    use std::sync::OnceLock;
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    DEVICE
        .get_or_init(|| Device::wgpu_options().init().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| ModelError::Backend(format!("no wgpu device available: {e}")))
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::Ndarray),
            "wgpu" => Ok(Backend::Wgpu),
            _ => Err(ModelError::InvalidOption(format!(
                "unknown backend {s:?} (expected one of: flex, ndarray, wgpu)"
            ))),
        }
    }
}
