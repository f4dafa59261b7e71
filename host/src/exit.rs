//! Exit codes: 0 success, 2 bad input (one line naming file and key), 1 anything else.

use std::process::ExitCode;

use boot_sdk::InputError;

/// Prints the error (if any) and maps it to the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    let Err(err) = result else { return ExitCode::SUCCESS };
    if let Some(input) = err.chain().find_map(|e| e.downcast_ref::<InputError>()) {
        let line = input.to_string().replace('\n', " ");
        eprintln!("error: {line}");
        return ExitCode::from(2);
    }
    eprintln!("error: {err:#}");
    ExitCode::from(1)
}
