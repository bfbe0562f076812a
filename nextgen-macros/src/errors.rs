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

pub(crate) use nextgen_catalog::closest;

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
