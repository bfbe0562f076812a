// A misspelled payload type is rustc's own error, not ours: the macro sees tokens, not types,
// and cannot tell a typo from an alias of the payload (`type Payment = Charge;` is accepted,
// see ui/pass/aliases.rs), so it has nothing to say before name resolution runs. What this
// case pins is that the expansion adds nothing to rustc's one E0412 at the user's tokens: no
// second error from the generated code, no trait error on the unresolved type.
//
// The prelude is not glob-imported here on purpose: with `Charge` in scope, rustc adds "a struct
// with a similar name exists" and quotes `pub struct Charge {` from nextgen-events/src, which
// pinned this file to the library's source rather than to the diagnostic.
use nextgen_events::nextgen_event;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Chrage) {
    let _ = charge;
}

fn main() {}
