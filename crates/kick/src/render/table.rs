//! Listings as aligned columns (comfy-table), without borders, two spaces
//! between columns and no trailing blanks.

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, presets};

/// A column: its header and whether its values are right-aligned (numbers).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header, in capitals.
    pub header: &'static str,
    /// Right-aligned.
    pub right: bool,
}

/// A left-aligned column.
pub const fn left(header: &'static str) -> Column {
    Column {
        header,
        right: false,
    }
}

/// A right-aligned column.
pub const fn right(header: &'static str) -> Column {
    Column {
        header,
        right: true,
    }
}

/// `rows` under `columns`, one line each, ending in a newline.
pub fn render(columns: &[Column], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(columns.iter().map(|c| c.header));
    for row in rows {
        table.add_row(row);
    }
    let last = columns.len().saturating_sub(1);
    for (i, c) in columns.iter().enumerate() {
        if let Some(col) = table.column_mut(i) {
            col.set_padding((0, if i == last { 0 } else { 2 }));
            col.set_constraint(ColumnConstraint::ContentWidth);
            if c.right {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_without_trailing_blanks() {
        let t = render(
            &[left("NAME"), right("N"), left("NOTE")],
            vec![
                vec!["a".into(), "10".into(), "x".into()],
                vec!["long name".into(), "2".into(), String::new()],
            ],
        );
        assert_eq!(t, "NAME        N  NOTE\na          10  x\nlong name   2\n");
    }
}
