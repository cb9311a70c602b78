//! Column alignment as Go's text/tabwriter does it, which docker uses for every table
//! (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` for ps/images, minimum width 20 and padding 1
//! for version/info).
//!
//! Cells are tab-terminated; the text after the last tab of a line is not a cell of any column
//! and is never padded. A column's width is computed per *column block*: the run of consecutive
//! lines that have a tab-terminated cell at that index (pkg.go.dev/text/tabwriter).

/// Alignment settings.
#[derive(Debug, Clone, Copy)]
pub struct TabWriter {
    /// Minimal cell width including padding.
    pub min_width: usize,
    /// Padding added to the widest cell of a column.
    pub padding: usize,
}

/// Settings of docker's tables (ps, images, history...).
pub const TABLE: TabWriter = TabWriter {
    min_width: 10,
    padding: 3,
};

impl TabWriter {
    /// Aligns `text` (lines separated by '\n', cells by '\t').
    pub fn format(&self, text: &str) -> String {
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.block(&lines, 0, lines.len(), &mut widths, &mut out);
        if !trailing_newline {
            out.pop();
        }
        out
    }

    fn block(
        &self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // The lines before this one have no cell in this column: print them as they are.
            write_lines(&lines[line0..this], widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                let w = cell_width(lines[this][column]) + self.padding;
                width = width.max(w);
                this += 1;
            }
            widths.push(width);
            self.block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(&lines[line0..line1], widths, out);
    }
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], out: &mut String) {
    for line in lines {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() && j < widths.len() {
                let pad = widths[j].saturating_sub(cell_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go() {
        let t = TABLE.format("A\tBB\tC\nxxxxxxxxxxxxx\ty\tz\n");
        assert_eq!(
            t,
            "A               BB        C\nxxxxxxxxxxxxx   y         z\n"
        );
    }

    #[test]
    fn blocks_are_separate() {
        let w = TabWriter {
            min_width: 0,
            padding: 1,
        };
        assert_eq!(w.format("a\tb\nhead\nlonger\tc\n"), "a b\nhead\nlonger c\n");
    }
}
