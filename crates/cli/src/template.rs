//! A small engine for the subset of Go's text/template that `--format` uses.
//!
//! Supported (semantics as documented at pkg.go.dev/text/template): text and `{{ }}` actions
//! with `{{-`/`-}}` trimming; fields `.A.B` (on JSON objects: exact key first, then
//! case-insensitive, so both docker's typed names `.ID` and the raw `.Id` work); `.`; variables
//! `$` and `$x := pipeline`; string, number and boolean literals; pipelines `a | b`;
//! parenthesised pipelines; `if`/`else if`/`else`/`end`, `range` (binding `$i, $v :=` too) and
//! `with`. Functions: docker's (`json`, `join`, `split`, `title`, `lower`, `upper`, `pad`,
//! `truncate`) and Go's (`index`, `len`, `print`, `printf`, `println`, `not`, `and`, `or`,
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`).
//!
//! Values are `serde_json::Value`: inspect output is the daemon's JSON, and the ps/images row
//! models are built as JSON objects with docker's field names.

use std::collections::HashMap;

use serde_json::Value;

/// A template that failed to parse or execute; the message reads like Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` relative to dot (empty path: dot itself).
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Func(String),
    Sub(Pipeline, Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    escape_html: bool,
}

impl Template {
    /// Parses template text.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let items = split_actions(text)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&items, &mut pos)?;
        if let Some(kw) = end {
            return err(format!("unexpected {{{{{kw}}}}}"));
        }
        Ok(Template {
            nodes,
            escape_html: false,
        })
    }

    /// Makes `json` escape `<`, `>` and `&` as `\u003c`..., as Go's json.Marshal does (docker's
    /// ps and images row models are marshalled that way).
    pub fn with_html_escape(mut self, on: bool) -> Self {
        self.escape_html = on;
        self
    }

    /// Executes against `data`, returning the produced text.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        let ctx = Exec {
            escape_html: self.escape_html,
        };
        ctx.walk(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

/// Text pieces and action texts, trim markers applied.
enum Item {
    Text(String),
    Action(String),
}

fn split_actions(text: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut trim_next_left = false;
    while let Some(start) = rest.find("{{") {
        let mut before = &rest[..start];
        if trim_next_left {
            before = before.trim_start();
        }
        let after_open = &rest[start + 2..];
        let (trim_left, inner_start) = if after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n")
        {
            (true, 2)
        } else {
            (false, 0)
        };
        if trim_left {
            before = before.trim_end();
        }
        if !before.is_empty() {
            items.push(Item::Text(before.to_string()));
        }
        let body = &after_open[inner_start..];
        let close = find_close(body).ok_or_else(|| TemplateError("unclosed action".into()))?;
        let mut inner = &body[..close];
        trim_next_left = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next_left = true;
        }
        let inner = inner.trim();
        if !inner.starts_with("/*") {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &body[close + 2..];
    }
    let mut tail = rest;
    if trim_next_left {
        tail = tail.trim_start();
    }
    if !tail.is_empty() {
        items.push(Item::Text(tail.to_string()));
    }
    Ok(items)
}

/// Position of the closing `}}`, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses nodes until `end`/`else`; returns the nodes and the keyword that stopped it.
fn parse_list(
    items: &[Item],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let (word, rest) = match a.find(|c: char| c.is_whitespace()) {
                    Some(i) => (&a[..i], a[i..].trim()),
                    None => (a.as_str(), ""),
                };
                match word {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => return Ok((nodes, Some(format!("else {rest}").trim().to_string()))),
                    "if" | "range" | "with" => {
                        let pipe = parse_pipeline(rest)?;
                        let (body, stop) = parse_list(items, pos)?;
                        let (otherwise, stop) = match stop {
                            Some(s) if s.starts_with("else") => parse_else_chain(items, pos, s)?,
                            other => (Vec::new(), other),
                        };
                        if stop.as_deref() != Some("end") {
                            return err(format!("unexpected EOF in {word}"));
                        }
                        nodes.push(match word {
                            "if" => Node::If {
                                cond: pipe,
                                then: body,
                                otherwise,
                            },
                            "range" => Node::Range {
                                pipe,
                                body,
                                otherwise,
                            },
                            _ => Node::With {
                                pipe,
                                body,
                                otherwise,
                            },
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_else_chain(
    items: &[Item],
    pos: &mut usize,
    stop: String,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let cond = stop.trim_start_matches("else").trim().to_string();
    if let Some(c) = cond.strip_prefix("if ") {
        let cond = parse_pipeline(c)?;
        let (then, st) = parse_list(items, pos)?;
        let (otherwise, st) = match st {
            Some(s) if s.starts_with("else") => parse_else_chain(items, pos, s)?,
            other => (Vec::new(), other),
        };
        Ok((
            vec![Node::If {
                cond,
                then,
                otherwise,
            }],
            st,
        ))
    } else {
        parse_list(items, pos)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Ident(String),
    Pipe,
    Open,
    Close(Vec<String>),
    Declare,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let ident = |chars: &[char], i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let fields = |chars: &[char], i: &mut usize| {
        let mut path = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            *i += 1;
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            if start == *i {
                break;
            }
            path.push(chars[start..*i].iter().collect::<String>());
        }
        path
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                i += 1;
                let path = fields(&chars, &mut i);
                toks.push(Tok::Close(path));
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Declare);
                i += 1;
            }
            '.' => {
                let path = fields(&chars, &mut i);
                toks.push(Tok::Field(path));
            }
            '$' => {
                i += 1;
                let name = format!("${}", ident(&chars, &mut i));
                let path = fields(&chars, &mut i);
                toks.push(Tok::Var(name, path));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return err("unterminated quoted string");
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                toks.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let num = if let Ok(n) = text.parse::<i64>() {
                    serde_json::Number::from(n)
                } else if let Some(n) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    n
                } else {
                    return err(format!("bad number syntax: {text:?}"));
                };
                toks.push(Tok::Num(num));
            }
            c if c.is_alphabetic() || c == '_' => {
                toks.push(Tok::Ident(ident(&chars, &mut i)));
            }
            other => return err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, TemplateError> {
    let toks = lex(s)?;
    let mut pos = 0;
    let p = parse_pipe_toks(&toks, &mut pos)?;
    if pos != toks.len() {
        return err(format!("unexpected {:?} in operand", toks[pos]));
    }
    Ok(p)
}

fn parse_pipe_toks(toks: &[Tok], pos: &mut usize) -> Result<Pipeline, TemplateError> {
    let mut decl = Vec::new();
    // Variable declarations: `$x :=` or `$i, $v :=`.
    let mut look = *pos;
    let mut names = Vec::new();
    while let Some(Tok::Var(name, path)) = toks.get(look) {
        if !path.is_empty() {
            break;
        }
        names.push(name.clone());
        look += 1;
        match toks.get(look) {
            Some(Tok::Comma) => look += 1,
            Some(Tok::Declare) => {
                decl = names.clone();
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut cmd = Vec::new();
    while let Some(tok) = toks.get(*pos) {
        match tok {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return err("missing command before |");
                }
                cmds.push(std::mem::take(&mut cmd));
                *pos += 1;
            }
            Tok::Close(_) => break,
            Tok::Open => {
                *pos += 1;
                let sub = parse_pipe_toks(toks, pos)?;
                match toks.get(*pos) {
                    Some(Tok::Close(path)) => {
                        cmd.push(Arg::Sub(sub, path.clone()));
                        *pos += 1;
                    }
                    _ => return err("unclosed left paren"),
                }
            }
            Tok::Field(p) => {
                cmd.push(Arg::Field(p.clone()));
                *pos += 1;
            }
            Tok::Var(n, p) => {
                cmd.push(Arg::Var(n.clone(), p.clone()));
                *pos += 1;
            }
            Tok::Str(s) => {
                cmd.push(Arg::Str(s.clone()));
                *pos += 1;
            }
            Tok::Num(n) => {
                cmd.push(Arg::Num(n.clone()));
                *pos += 1;
            }
            Tok::Ident(id) => {
                cmd.push(match id.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    _ => Arg::Func(id.clone()),
                });
                *pos += 1;
            }
            Tok::Declare | Tok::Comma => return err("unexpected declaration"),
        }
    }
    if cmd.is_empty() {
        return err("missing value for command");
    }
    cmds.push(cmd);
    Ok(Pipeline { decl, cmds })
}

struct Exec {
    escape_html: bool,
}

type Vars = Vec<(String, Value)>;

impl Exec {
    fn walk(
        &self,
        nodes: &[Node],
        dot: &Value,
        vars: &mut Vars,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot, vars)?;
                    if p.decl.is_empty() {
                        out.push_str(&go_print(&v));
                    }
                }
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let mark = vars.len();
                    let v = self.pipeline(cond, dot, vars)?;
                    if truthy(&v) {
                        self.walk(then, dot, vars, out)?;
                    } else {
                        self.walk(otherwise, dot, vars, out)?;
                    }
                    vars.truncate(mark);
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = vars.len();
                    let v = self.pipeline(pipe, dot, vars)?;
                    if truthy(&v) {
                        self.walk(body, &v, vars, out)?;
                    } else {
                        self.walk(otherwise, dot, vars, out)?;
                    }
                    vars.truncate(mark);
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = vars.len();
                    let mut p = pipe.clone();
                    let decl = std::mem::take(&mut p.decl);
                    let v = self.pipeline(&p, dot, vars)?;
                    let entries: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(m) => m
                            .iter()
                            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                            .collect(),
                        Value::Null => Vec::new(),
                        Value::Number(n) => (0..n.as_i64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => {
                            return err(format!("range can't iterate over {}", go_print(other)));
                        }
                    };
                    if entries.is_empty() {
                        self.walk(otherwise, dot, vars, out)?;
                    }
                    for (k, x) in entries {
                        let inner = vars.len();
                        match decl.as_slice() {
                            [v] => vars.push((v.clone(), x.clone())),
                            [i, v] => {
                                vars.push((i.clone(), k));
                                vars.push((v.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.walk(body, &x, vars, out)?;
                        vars.truncate(inner);
                    }
                    vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&self, p: &Pipeline, dot: &Value, vars: &mut Vars) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.command(cmd, dot, vars, piped)?);
        }
        let v = piped.unwrap_or(Value::Null);
        if let Some(name) = p.decl.first() {
            vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn command(
        &self,
        cmd: &[Arg],
        dot: &Value,
        vars: &mut Vars,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        if let Arg::Func(name) = &cmd[0] {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(self.arg(a, dot, vars)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(name, args);
        }
        if cmd.len() > 1 || piped.is_some() {
            // Field "methods" with arguments are not supported on JSON values.
            return err(format!("can't give argument to non-function {:?}", cmd[0]));
        }
        self.arg(&cmd[0], dot, vars)
    }

    fn arg(&self, a: &Arg, dot: &Value, vars: &mut Vars) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Field(path) => lookup(dot, path)?,
            Arg::Var(name, path) => {
                let base = vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))?;
                lookup(&base, path)?
            }
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Num(n) => Value::Number(n.clone()),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Func(name) => self.call(name, Vec::new())?,
            Arg::Sub(p, path) => {
                let v = self.pipeline(p, dot, vars)?;
                lookup(&v, path)?
            }
        })
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            }
        };
        let s = |v: &Value| go_print(v);
        Ok(match name {
            "json" => {
                want(1)?;
                Value::String(to_json(&args[0], self.escape_html))
            }
            "upper" => {
                want(1)?;
                Value::String(s(&args[0]).to_uppercase())
            }
            "lower" => {
                want(1)?;
                Value::String(s(&args[0]).to_lowercase())
            }
            "title" => {
                want(1)?;
                Value::String(title(&s(&args[0])))
            }
            "join" => {
                want(2)?;
                let items: Vec<String> = match &args[0] {
                    Value::Array(a) => a.iter().map(go_print).collect(),
                    Value::Null => Vec::new(),
                    other => vec![go_print(other)],
                };
                Value::String(items.join(&s(&args[1])))
            }
            "split" => {
                want(2)?;
                Value::Array(
                    s(&args[0])
                        .split(s(&args[1]).as_str())
                        .map(|p| Value::String(p.to_string()))
                        .collect(),
                )
            }
            "pad" => {
                want(3)?;
                let l = args[1].as_i64().unwrap_or(0).max(0) as usize;
                let r = args[2].as_i64().unwrap_or(0).max(0) as usize;
                Value::String(format!("{}{}{}", " ".repeat(l), s(&args[0]), " ".repeat(r)))
            }
            "truncate" => {
                want(2)?;
                let n = args[1].as_i64().unwrap_or(0).max(0) as usize;
                Value::String(s(&args[0]).chars().take(n).collect())
            }
            "len" => {
                want(1)?;
                Value::from(match &args[0] {
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    Value::String(st) => st.len(),
                    Value::Null => 0,
                    other => return err(format!("len of {}", go_print(other))),
                })
            }
            "index" => {
                if args.is_empty() {
                    return err("wrong number of args for index");
                }
                let mut v = args[0].clone();
                for k in &args[1..] {
                    v = match (&v, k) {
                        (Value::Object(m), key) => {
                            m.get(&go_print(key)).cloned().unwrap_or(Value::Null)
                        }
                        (Value::Array(a), Value::Number(n)) => a
                            .get(n.as_u64().unwrap_or(u64::MAX) as usize)
                            .cloned()
                            .ok_or_else(|| TemplateError(format!("index out of range: {n}")))?,
                        (Value::Null, _) => Value::Null,
                        _ => return err(format!("can't index item of type {}", kind_name(&v))),
                    };
                }
                v
            }
            "print" => Value::String(go_sprint(&args)),
            "println" => {
                let parts: Vec<String> = args.iter().map(go_print).collect();
                Value::String(parts.join(" ") + "\n")
            }
            "printf" => {
                if args.is_empty() {
                    return err("wrong number of args for printf");
                }
                Value::String(printf(&s(&args[0]), &args[1..]))
            }
            "not" => {
                want(1)?;
                Value::Bool(!truthy(&args[0]))
            }
            "and" => args
                .iter()
                .find(|a| !truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "or" => args
                .iter()
                .find(|a| truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "eq" => {
                if args.len() < 2 {
                    return err("missing argument for comparison");
                }
                Value::Bool(args[1..].iter().any(|b| values_equal(&args[0], b)))
            }
            "ne" => {
                want(2)?;
                Value::Bool(!values_equal(&args[0], &args[1]))
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = compare(&args[0], &args[1])
                    .ok_or_else(|| TemplateError("incompatible types for comparison".into()))?;
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "lt" => ord == Less,
                    "le" => ord != Greater,
                    "gt" => ord == Greater,
                    _ => ord != Less,
                })
            }
            other => return err(format!("function {other:?} not defined")),
        })
    }
}

fn lookup(base: &Value, path: &[String]) -> Result<Value, TemplateError> {
    let mut v = base.clone();
    for name in path {
        v = match &v {
            Value::Object(m) => match m.get(name) {
                Some(x) => x.clone(),
                None => match m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    Some((_, x)) => x.clone(),
                    None => Value::Null,
                },
            },
            Value::Null => Value::Null,
            other => {
                return err(format!(
                    "can't evaluate field {name} in type {}",
                    kind_name(other)
                ));
            }
        };
    }
    Ok(v)
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Formats a value as Go's fmt `%v` prints the decoded JSON: maps as `map[k:v]` with sorted
/// keys, lists as `[a b]`, null as `<nil>`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        other => go_print_inner(other),
    }
}

fn go_print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    format!("{f}")
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_print_inner).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print_inner(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print_inner(a));
    }
    out
}

/// A `printf` for the verbs `%s %v %d %q %%` (enough for format strings in practice).
fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = it.next() else {
            out.push('%');
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(n) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        n += 1;
        match verb {
            'q' => out.push_str(&go_quote(&go_print_inner(a))),
            _ => out.push_str(&go_print_inner(a)),
        }
    }
    out
}

/// Go's `strconv.Quote`: double quotes, backslash escapes for quotes, backslashes and control
/// characters; printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as Go's encoder writes it (sorted object keys; `<>&` escaped when asked, as
/// json.Marshal does by default).
pub fn to_json(v: &Value, escape_html: bool) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if escape_html {
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    } else {
        s
    }
}

/// Renders `template` once with `header` (a map of field name to column title) when it is a
/// `table` format: the header row of docker's tables.
pub fn render_header(t: &Template, header: &HashMap<&str, &str>) -> Result<String, TemplateError> {
    let obj: serde_json::Map<String, Value> = header
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let out = t.execute(&Value::Object(obj))?;
    Ok(out.replace("<no value>", ""))
}

/// Prepares a `--format` string as docker does: `table` prefix detected and removed, and the
/// two-character sequences `\t` and `\n` turned into a tab and a newline.
pub fn prepare_format(format: &str) -> (bool, String) {
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.strip_prefix(' ').unwrap_or(rest)),
        None => (false, format),
    };
    (table, body.replace("\\t", "\t").replace("\\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().execute(&v).unwrap()
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"State": {"Status": "running", "Pid": 42}, "Id": "abc"});
        assert_eq!(
            run("{{.State.Status}} {{.State.Pid}}", v.clone()),
            "running 42"
        );
        assert_eq!(run("id={{.ID}}", v.clone()), "id=abc");
        assert_eq!(run("{{.Missing}}", v), "<no value>");
    }

    #[test]
    fn trims() {
        assert_eq!(run("a  {{- \"b\" -}}  c", json!({})), "abc");
    }
}
