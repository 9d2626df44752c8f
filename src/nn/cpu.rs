//! Which instruction sets the CPU kernels may use: what the CPU has,
//! capped by `ZOO_KERNEL` (`portable`, `avx2` or `avx512`) so that every
//! lower path can be forced and tested on any machine. Read once.

/// A kernel level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512F (and VNNI for int8 where present).
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Level::Portable),
            "avx2" => Some(Level::Avx2),
            "avx512" => Some(Level::Avx512),
            _ => None,
        }
    }
}

/// The best level this CPU runs, ignoring `ZOO_KERNEL`.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// Every level this CPU can run, lowest first.
pub fn runnable() -> Vec<Level> {
    [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| l <= detected())
        .collect()
}

/// The level the kernels use: the detected one, capped by `ZOO_KERNEL`
/// (and by the older `ZOO_NO_AVX512`). A `ZOO_KERNEL` above what the CPU
/// has, or unknown, is ignored (`zoo devices` says so).
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let mut l = detected();
        if std::env::var_os("ZOO_NO_AVX512").is_some() {
            l = l.min(Level::Avx2);
        }
        if let Some(cap) = requested() {
            l = l.min(cap);
        }
        l
    })
}

/// `ZOO_KERNEL` when set to a known level.
pub fn requested() -> Option<Level> {
    std::env::var("ZOO_KERNEL")
        .ok()
        .and_then(|v| Level::parse(&v))
}

/// Whether kernels of `l` may run.
pub fn allows(l: Level) -> bool {
    level() >= l
}

/// One line for `zoo devices` and `zoo bench`: the level chosen and why.
pub fn describe() -> String {
    #[allow(unused_mut)]
    let mut seen: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    for (name, has) in [
        ("avx2", is_x86_feature_detected!("avx2")),
        ("fma", is_x86_feature_detected!("fma")),
        ("f16c", is_x86_feature_detected!("f16c")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
        ("avx512vnni", is_x86_feature_detected!("avx512vnni")),
    ] {
        if has {
            seen.push(name);
        }
    }
    let why = match (std::env::var("ZOO_KERNEL").ok(), requested()) {
        (Some(v), None) => format!("; ZOO_KERNEL={v} is not portable, avx2 or avx512: ignored"),
        (Some(_), Some(r)) if r > detected() => {
            format!("; ZOO_KERNEL={} is more than this CPU has", r.name())
        }
        (Some(_), Some(r)) if r == detected() => format!("; ZOO_KERNEL={}", r.name()),
        (Some(_), Some(r)) => format!("; forced down by ZOO_KERNEL={}", r.name()),
        (None, _) => String::new(),
    };
    format!(
        "CPU kernels: {} (features seen: {}{why})",
        level().name(),
        if seen.is_empty() {
            "none of avx2, fma, f16c, avx512f".to_string()
        } else {
            seen.join(" ")
        }
    )
}
