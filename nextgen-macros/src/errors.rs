//! Error helpers shared by [`parse`](crate::parse) and [`check`](crate::check): combining
//! errors, suggesting the closest spelling, listing what is accepted.

/// Folds several errors into one, or `Ok` when there are none.
pub(crate) fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    errors
        .into_iter()
        .reduce(|mut all, error| {
            all.combine(error);
            all
        })
        .map_or(Ok(()), Err)
}

/// The candidate closest to a misspelt word, when one is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // darling's threshold: close enough that the suggestion is usually right.
    const THRESHOLD: f64 = 0.8;
    candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::jaro_winkler(written, candidate)))
        .filter(|(_, score)| *score > THRESHOLD)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn and_list<T: AsRef<str>>(items: &[T]) -> String {
    let mut text = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            text.push_str(if index + 1 == items.len() {
                " and "
            } else {
                ", "
            });
        }
        text.push_str(item.as_ref());
    }
    text
}
