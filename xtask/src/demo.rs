pub fn run(_phases: &mut crate::Phases) -> Result<(), String> { Err("the demo is not wired yet".into()) }
