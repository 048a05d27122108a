//! SQL shared by the store implementations (and by nothing else: only stores know SQL).

use crate::stalls::StallFilter;

/// The `AND …` conditions of a stall filter over the named columns, and the values to bind in
/// order; `placeholder(n)` writes the n-th parameter (`?` for SQLite, `$n` for PostgreSQL).
/// Built per filter so that each query can use the index on the column it filters by. Only
/// fixed column names and placeholders go into the text; values are bound.
pub(crate) fn stall_conditions(
    filter: &StallFilter,
    process: &str,
    department: Option<&str>,
    with_state: bool,
    placeholder: fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut clause = String::new();
    let mut binds = Vec::new();
    let state = [("item", &filter.item), ("step", &filter.step)];
    let wanted = [(Some(process), &filter.process), (department, &filter.department)]
        .into_iter()
        .chain(state.into_iter().filter(|_| with_state).map(|(c, v)| (Some(c), v)));
    for (column, value) in wanted {
        if let (Some(column), Some(value)) = (column, value) {
            binds.push(value.clone());
            clause.push_str(&format!(" AND {column} = {}", placeholder(binds.len())));
        }
    }
    (clause, binds)
}
