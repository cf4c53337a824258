//! The pure sync pipeline: ExternalSecret spec + provider answers -> desired Secret.
