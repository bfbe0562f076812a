use nextgen_events::prelude::*;

#[nextgen_event("charge.failed")]
async fn with_string(charge: Charge) -> Result<(), String> {
    if charge.paid {
        Ok(())
    } else {
        Err("not paid".to_owned())
    }
}

#[nextgen_event("charge.pending")]
async fn with_io_error(charge: Charge) -> Result<(), std::io::Error> {
    let _ = charge;
    Ok(())
}

#[nextgen_event("charge.updated")]
async fn with_unit(charge: Charge) -> () {
    let _ = charge;
}

fn main() {}
