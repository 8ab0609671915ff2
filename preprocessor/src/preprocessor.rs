//! mdBook 0.5's preprocessor protocol: the [`Labbook`] preprocessor, used in process by
//! `labbook build` and behind the `mdbook-labbook` command.
//!
//! mdBook asks `mdbook-labbook supports <renderer>` (exit 0 means yes: every renderer is
//! supported, because every renderer needs the annotation comments removed), then pipes
//! `[context, book]` as JSON on stdin and reads the book back on stdout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mdbook_preprocessor::book::{Book as MdBook, BookItem, Chapter};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use labbook::course::CourseConfig;
use labbook::error::ParseError;
use labbook::report::Report;

use super::{Book, Output};

/// The name of the preprocessor, as in `[preprocessor.labbook]`.
pub const NAME: &str = "labbook";

/// Why a book could not be preprocessed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A chapter is not a valid lab (an annotation that does not parse, an unclosed fence, ...).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// `[preprocessor.labbook]` holds something labbook cannot use.
    #[error("{}: failed to read [preprocessor.labbook]: {message}", path.display())]
    Config {
        /// The `book.toml` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The run report exists but cannot be read.
    #[error("failed to read the run report {}", path.display())]
    ReportRead {
        /// The report file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run report is not a labbook `report.json`.
    #[error("{}:{line}: failed to parse the run report: {message}", path.display())]
    ReportParse {
        /// The report file.
        path: PathBuf,
        /// The line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// mdBook's input on stdin is not a `[context, book]` pair.
    #[error("failed to read mdBook's input on stdin: {0}")]
    Input(String),
    /// The command line is not `mdbook-labbook [supports <renderer>]`.
    #[error(
        "failed to understand the arguments `{0}`: usage is `mdbook-labbook [supports <renderer>]`"
    )]
    Usage(String),
    /// The book could not be written to stdout.
    #[error("failed to write the book to stdout")]
    Output(#[source] serde_json::Error),
}

/// The labbook preprocessor: wraps each step for the html renderer and removes annotation
/// comments for every renderer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Labbook;

impl Labbook {
    /// A new preprocessor.
    pub fn new() -> Labbook {
        Labbook
    }
}

impl Preprocessor for Labbook {
    fn name(&self) -> &str {
        NAME
    }

    fn run(
        &self,
        ctx: &PreprocessorContext,
        mut book: MdBook,
    ) -> mdbook_preprocessor::errors::Result<MdBook> {
        let (settings, warnings) = book_for(ctx)?;
        for warning in warnings {
            eprintln!("mdbook-labbook: warning: {warning}");
        }
        render_book(&settings, &mut book, Output::for_renderer(&ctx.renderer))?;
        Ok(book)
    }

    fn supports_renderer(&self, _renderer: &str) -> mdbook_preprocessor::errors::Result<bool> {
        Ok(true)
    }
}

/// Renders every chapter of an mdBook in place; chapters without steps are not touched.
pub fn render_book(settings: &Book, book: &mut MdBook, output: Output) -> Result<(), RenderError> {
    let mut jobs = Vec::new();
    collect(&mut book.items, &mut jobs);
    // Chapters are independent: the available cores take them one at a time from a shared
    // counter (chapters differ a lot in size), and the results are put back in reading order,
    // so that the error reported is the first one a reader would meet.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(index) else {
                return done;
            };
            let rendered = match &job.relative {
                Some(relative) => settings.render_chapter(relative, job.content, output),
                None => Ok(None),
            };
            done.push((index, rendered));
        }
    };
    let mut results: Vec<(usize, Result<Option<String>, ParseError>)> = if threads > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                // A panic in a worker is a bug; re-raise it rather than hide a chapter.
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    } else {
        work()
    };
    results.sort_by_key(|(index, _)| *index);
    for (index, rendered) in results {
        if let Some(content) = rendered? {
            *jobs[index].content = content;
        }
    }
    Ok(())
}

/// One chapter to render: its file relative to `src`, and its content to replace.
struct Job<'a> {
    relative: Option<PathBuf>,
    content: &'a mut String,
}

fn collect<'a>(items: &'a mut [BookItem], out: &mut Vec<Job<'a>>) {
    for item in items {
        if let BookItem::Chapter(Chapter {
            content,
            path,
            source_path,
            sub_items,
            ..
        }) = item
        {
            // Draft chapters have no file. `source_path` is the file as written (`README.md`,
            // which the index preprocessor may already have renamed to `index.md` in `path`).
            out.push(Job {
                relative: source_path.clone().or_else(|| path.clone()),
                content,
            });
            collect(sub_items, out);
        }
    }
}

/// The rendering settings of the book mdBook is building, and any warnings about them.
pub fn book_for(ctx: &PreprocessorContext) -> Result<(Book, Vec<String>), RenderError> {
    let book_toml = ctx.root.join("book.toml");
    let config: CourseConfig = ctx
        .config
        .get(&format!("preprocessor.{NAME}"))
        .map_err(|e| RenderError::Config {
            path: book_toml.clone(),
            message: format!("{e:#}"),
        })?
        .unwrap_or_default();
    // Name files relative to where the user stands, as the rest of labbook does.
    let root = std::env::current_dir()
        .ok()
        .and_then(|cwd| ctx.root.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| ctx.root.clone());
    let src = root.join(&ctx.config.book.src);
    let (report, mut warnings) = load_report(&root, config.report.as_deref())?;
    if ctx.renderer == "html" {
        warnings.extend(stylesheet_warning(ctx));
    }
    Ok((Book::new(root, src, config, report), warnings))
}

/// A warning when the html book does not load labbook's stylesheet: without it a check's
/// expected output shows as bare text with nothing saying what it is.
fn stylesheet_warning(ctx: &PreprocessorContext) -> Option<String> {
    let css: Vec<String> = ctx
        .config
        .get("output.html.additional-css")
        .ok()
        .flatten()
        .unwrap_or_default();
    let loaded = css.iter().any(|file| {
        let path = ctx.root.join(file);
        path.file_name().is_some_and(|n| n == "labbook.css") && path.is_file()
    });
    (!loaded).then(|| {
        format!(
            "the book does not load labbook's stylesheet, so expected output and badges show \
             unstyled: write it with `labbook init {}` (it only adds missing files) or copy it to \
             {}, and add `additional-css = [\"{}\"]` to [output.html] in book.toml",
            ctx.root.display(),
            crate::STYLESHEET_PATH,
            crate::STYLESHEET_PATH
        )
    })
}

/// Reads the run report: the configured one, or `report.json` in the book folder when it exists.
fn load_report(
    root: &Path,
    configured: Option<&Path>,
) -> Result<(Option<Report>, Vec<String>), RenderError> {
    let path = root.join(configured.unwrap_or(Path::new("report.json")));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let warnings = configured
                .map(|_| {
                    format!(
                        "the run report {} does not exist yet; labs are shown as not verified",
                        path.display()
                    )
                })
                .into_iter()
                .collect();
            return Ok((None, warnings));
        }
        Err(source) => return Err(RenderError::ReportRead { path, source }),
    };
    let report = serde_json::from_str(&text).map_err(|e| RenderError::ReportParse {
        path,
        line: e.line(),
        message: e.to_string(),
    })?;
    Ok((Some(report), Vec::new()))
}

/// The `mdbook-labbook` command: `supports <renderer>` answers yes; no arguments reads mdBook's
/// JSON on `input` and writes the preprocessed book to `output`.
pub fn run_command(
    args: &[String],
    input: impl Read,
    output: impl Write,
) -> Result<(), RenderError> {
    match args {
        [supports, _renderer] if supports == "supports" => Ok(()),
        [] => {
            // Build the model's patterns while the book's JSON is read.
            std::thread::spawn(super::warm_up);
            let (ctx, mut book) = mdbook_preprocessor::parse_input(input)
                .map_err(|e| RenderError::Input(format!("{:#}", e)))?;
            if !same_minor(&ctx.mdbook_version, mdbook_preprocessor::MDBOOK_VERSION) {
                eprintln!(
                    "mdbook-labbook: warning: built for mdBook {}, called by mdBook {}",
                    mdbook_preprocessor::MDBOOK_VERSION,
                    ctx.mdbook_version
                );
            }
            let (settings, warnings) = book_for(&ctx)?;
            for warning in warnings {
                eprintln!("mdbook-labbook: warning: {warning}");
            }
            render_book(&settings, &mut book, Output::for_renderer(&ctx.renderer))?;
            serde_json::to_writer(output, &book).map_err(RenderError::Output)
        }
        other => Err(RenderError::Usage(other.join(" "))),
    }
}

/// Whether two versions share major and minor (`0.5.1` and `0.5.4` do).
fn same_minor(a: &str, b: &str) -> bool {
    let key = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    key(a) == key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_draft_chapters_are_handled() {
        let lab = "# Lab\n\n<!-- labbook: id=x -->\n```bash\nls\n```\n";
        let mut parent = Chapter::new("Parent", lab.into(), "parent.md", Vec::new());
        let mut child = Chapter::new("Child", lab.into(), "part/child.md", vec!["Parent".into()]);
        child
            .sub_items
            .push(BookItem::Chapter(Chapter::new_draft("Draft", Vec::new())));
        parent.sub_items.push(BookItem::Chapter(child));
        let mut book = MdBook::new_with_items(vec![
            BookItem::PartTitle("Part".into()),
            BookItem::Chapter(parent),
            BookItem::Separator,
        ]);
        let settings = Book::new(
            PathBuf::from("/nowhere"),
            PathBuf::from("/nowhere/src"),
            CourseConfig::default(),
            None,
        );
        render_book(&settings, &mut book, Output::Html).expect("renders");
        let contents: Vec<&str> = book
            .iter()
            .filter_map(|item| match item {
                BookItem::Chapter(c) => Some(c.content.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(contents.len(), 3);
        assert!(
            contents[0].contains("id=\"step-parent--x\""),
            "{}",
            contents[0]
        );
        assert!(
            contents[1].contains("id=\"step-part__child--x\""),
            "{}",
            contents[1]
        );
        assert_eq!(contents[2], "");
    }

    #[test]
    fn the_first_failing_chapter_in_reading_order_is_reported() {
        let good = "# Lab\n\n```bash\nls\n```\n";
        let bad = "# Lab\n\n<!-- labbook: kind=nope -->\n```bash\nls\n```\n";
        let items = (0..8)
            .map(|i| {
                let content = if i == 5 || i == 7 { bad } else { good };
                BookItem::Chapter(Chapter::new(
                    "C",
                    content.into(),
                    format!("c{i}.md"),
                    Vec::new(),
                ))
            })
            .collect();
        let mut book = MdBook::new_with_items(items);
        let settings = Book::new(
            PathBuf::from("b"),
            PathBuf::from("b/src"),
            CourseConfig::default(),
            None,
        );
        let err = render_book(&settings, &mut book, Output::Clean).expect_err("fails");
        assert!(err.to_string().starts_with("b/src/c5.md:3: "), "{err}");
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        let cases = [
            ("0.5.4", "0.5.0", true),
            ("0.5.4", "0.4.52", false),
            ("1.0", "1.0.3", true),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_minor(a, b), same, "{a} {b}");
        }
    }
}
