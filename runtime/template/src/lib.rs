//! Go text/template-compatible engine with the function library ESO users rely on.
