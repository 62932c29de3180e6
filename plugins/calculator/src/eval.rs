//! Parsing and evaluation of arithmetic expressions.
//!
//! The grammar, from loosest to tightest binding:
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/' | '%') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary ('^' unary)?            (right-associative: 2^3^2 = 2^9)
//! primary := number | constant | name '(' args ')' | '(' expr ')'
//! args    := expr (',' expr)*
//! ```
//!
//! so `-2^2` is `-(2^2)` and `2^-1` is `0.5`, as in mathematics. The whole input is
//! parsed before anything is evaluated, so syntax errors are reported before
//! arithmetic ones. Columns in error messages are 1-based and count characters.

/// Longest accepted expression, in characters.
pub const MAX_LEN: usize = 4096;

/// Deepest accepted nesting of parentheses, function calls, unary signs and powers.
/// Keeps the recursive-descent parser well inside the guest's stack.
pub const MAX_DEPTH: usize = 100;

/// Evaluates `input` and returns its value, or an error message meant for the caller
/// (usually a language model) that says what is wrong, where, and how to fix it.
pub fn evaluate(input: &str) -> Result<f64, String> {
    let length = input.chars().count();
    if length > MAX_LEN {
        return Err(format!(
            "expression is {length} characters long; the limit is {MAX_LEN}. \
             Split the computation into several smaller expressions."
        ));
    }
    if input.trim().is_empty() {
        return Err(
            "expression is empty; pass an arithmetic expression such as `2 * (3 + 4)`.".to_string(),
        );
    }
    let tokens = lex(input)?;
    let expr = Parser::new(tokens).parse()?;
    let value = expr.eval()?;
    if !value.is_finite() {
        return Err(
            "the result is not a finite number; check for overflow (values must stay within about ±1.8e308)."
                .to_string(),
        );
    }
    Ok(tidy(value))
}

/// Rounds to 15 significant digits, which removes binary floating-point noise
/// (`0.1 + 0.2` gives 0.3, not 0.30000000000000004) while keeping all the precision
/// an f64 reliably carries, and turns `-0` into `0`.
fn tidy(value: f64) -> f64 {
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    // Rounding up near f64::MAX could overflow; keep the exact value then.
    let rounded = if rounded.is_finite() { rounded } else { value };
    if rounded == 0.0 { 0.0 } else { rounded }
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Rem => "%",
            Op::Pow => "^",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Num(f64),
    Name(String),
    Op(Op),
    Open,
    Close,
    Comma,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// 1-based column of the token's first character.
    col: usize,
    /// The token as written, for messages.
    text: String,
}

fn lex(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let (token, next) = lex_number(&chars, i)?;
            tokens.push(token);
            i = next;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            if c == 'π' {
                tokens.push(Token {
                    kind: Kind::Name("pi".into()),
                    col,
                    text: "π".into(),
                });
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            tokens.push(Token {
                kind: Kind::Name(text.to_lowercase()),
                col,
                text,
            });
            continue;
        }
        let (kind, len) = match c {
            '+' => (Kind::Op(Op::Add), 1),
            '-' | '−' => (Kind::Op(Op::Sub), 1),
            '*' if chars.get(i + 1) == Some(&'*') => (Kind::Op(Op::Pow), 2),
            '*' | '×' | '·' => (Kind::Op(Op::Mul), 1),
            '/' | '÷' => (Kind::Op(Op::Div), 1),
            '%' => (Kind::Op(Op::Rem), 1),
            '^' => (Kind::Op(Op::Pow), 1),
            '(' => (Kind::Open, 1),
            ')' => (Kind::Close, 1),
            ',' => (Kind::Comma, 1),
            _ => return Err(unexpected_char(c, col)),
        };
        tokens.push(Token {
            kind,
            col,
            text: chars[i..i + len].iter().collect(),
        });
        i += len;
    }
    tokens.push(Token {
        kind: Kind::End,
        col: chars.len() + 1,
        text: String::new(),
    });
    Ok(tokens)
}

/// Lexes the number starting at `chars[start]`: digits with an optional fraction and
/// an optional exponent (`1`, `1.5`, `.5`, `5.`, `1e9`, `2.5E-3`).
fn lex_number(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let col = start + 1;
    let mut i = start;
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut mantissa_digits = digits(&mut i);
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return Err(format!(
            "unexpected `.` at column {col}: a decimal point must be next to digits, as in `0.5` or `.5`."
        ));
    }
    // An exponent only if digits follow, so that a trailing `e` stays a name (`2e` is
    // reported as a missing operator between `2` and `e`).
    if i < chars.len() && matches!(chars[i], 'e' | 'E') {
        let mut j = i + 1;
        if j < chars.len() && matches!(chars[j], '+' | '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            i = j;
            digits(&mut i);
        }
    }
    let text: String = chars[start..i].iter().collect();
    // Glued-on extra points or digits, as in `1.2.3`, are a malformed number rather
    // than two numbers side by side.
    if i < chars.len() && (chars[i] == '.' || chars[i].is_ascii_digit()) {
        let mut end = i;
        while end < chars.len() && (chars[end] == '.' || chars[end].is_ascii_alphanumeric()) {
            end += 1;
        }
        let whole: String = chars[start..end].iter().collect();
        return Err(format!(
            "malformed number `{whole}` at column {col}: a number has at most one decimal point \
             (write `1234.5`, not `1.234.5`)."
        ));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("malformed number `{text}` at column {col}."))?;
    if !value.is_finite() {
        return Err(format!(
            "number `{text}` at column {col} is too large; numbers must stay within about ±1.8e308."
        ));
    }
    Ok((
        Token {
            kind: Kind::Num(value),
            col,
            text,
        },
        i,
    ))
}

fn unexpected_char(c: char, col: usize) -> String {
    let hint = match c {
        '=' => " Pass only the expression to compute, without `=` or a result.",
        '[' | ']' | '{' | '}' => " Use parentheses `(` and `)` for grouping.",
        '!' => " Factorials are not supported; multiply the terms out, e.g. `5*4*3*2*1`.",
        '$' | '€' | '£' | '¥' => " Leave out currency symbols and units; pass plain numbers.",
        _ => "",
    };
    format!(
        "unexpected character `{c}` at column {col}.{hint} Supported: numbers, the operators \
         + - * / % ^, parentheses, commas between function arguments, the constants pi and e, \
         and the functions {}.",
        function_names()
    )
}

// ---------------------------------------------------------------------------
// Functions

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Abs,
    Acos,
    Asin,
    Atan,
    Atan2,
    Cbrt,
    Ceil,
    Cos,
    Exp,
    Floor,
    Ln,
    Log10,
    Log2,
    Max,
    Min,
    Pow,
    Round,
    Sin,
    Sqrt,
    Tan,
    Trunc,
}

/// A function's name, fewest and most arguments, and usage for messages.
struct FuncInfo {
    name: &'static str,
    func: Func,
    min_args: usize,
    max_args: usize,
    usage: &'static str,
}

const fn f(
    name: &'static str,
    func: Func,
    min_args: usize,
    max_args: usize,
    usage: &'static str,
) -> FuncInfo {
    FuncInfo {
        name,
        func,
        min_args,
        max_args,
        usage,
    }
}

/// Every function, sorted by name.
const FUNCTIONS: &[FuncInfo] = &[
    f("abs", Func::Abs, 1, 1, "abs(x)"),
    f("acos", Func::Acos, 1, 1, "acos(x)"),
    f("asin", Func::Asin, 1, 1, "asin(x)"),
    f("atan", Func::Atan, 1, 1, "atan(x)"),
    f("atan2", Func::Atan2, 2, 2, "atan2(y, x)"),
    f("cbrt", Func::Cbrt, 1, 1, "cbrt(x)"),
    f("ceil", Func::Ceil, 1, 1, "ceil(x)"),
    f("cos", Func::Cos, 1, 1, "cos(x)"),
    f("exp", Func::Exp, 1, 1, "exp(x)"),
    f("floor", Func::Floor, 1, 1, "floor(x)"),
    f("ln", Func::Ln, 1, 1, "ln(x)"),
    f("log10", Func::Log10, 1, 1, "log10(x)"),
    f("log2", Func::Log2, 1, 1, "log2(x)"),
    f("max", Func::Max, 1, usize::MAX, "max(a, b, ...)"),
    f("min", Func::Min, 1, usize::MAX, "min(a, b, ...)"),
    f("pow", Func::Pow, 2, 2, "pow(base, exponent)"),
    f("round", Func::Round, 1, 2, "round(x) or round(x, digits)"),
    f("sin", Func::Sin, 1, 1, "sin(x)"),
    f("sqrt", Func::Sqrt, 1, 1, "sqrt(x)"),
    f("tan", Func::Tan, 1, 1, "tan(x)"),
    f("trunc", Func::Trunc, 1, 1, "trunc(x)"),
];

fn lookup(name: &str) -> Option<&'static FuncInfo> {
    FUNCTIONS.iter().find(|info| info.name == name)
}

fn info(func: Func) -> &'static FuncInfo {
    FUNCTIONS
        .iter()
        .find(|info| info.func == func)
        .unwrap_or(&FUNCTIONS[0])
}

fn function_names() -> String {
    FUNCTIONS
        .iter()
        .map(|info| info.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn constant(name: &str) -> Option<f64> {
    match name {
        "pi" => Some(std::f64::consts::PI),
        "e" => Some(std::f64::consts::E),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Parser

/// A parsed expression. Runs of `+ -` and of `* / %` are kept flat (`Chain`) so that
/// long sums do not nest deeply; only parentheses, calls, signs and powers nest, and
/// those are capped by [`MAX_DEPTH`].
#[derive(Debug)]
enum Expr {
    Num(f64),
    Neg(Box<Expr>),
    Chain {
        first: Box<Expr>,
        rest: Vec<(Op, usize, Expr)>,
    },
    Pow {
        base: Box<Expr>,
        exponent: Box<Expr>,
        col: usize,
    },
    Call {
        func: Func,
        col: usize,
        args: Vec<Expr>,
    },
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

const OPERAND: &str = "a number, a constant, a function call or `(`";

impl Parser {
    fn new(tokens: Vec<Token>) -> Self {
        Self {
            tokens,
            pos: 0,
            depth: 0,
        }
    }

    fn parse(mut self) -> Result<Expr, String> {
        let expr = self.expr()?;
        let token = self.peek();
        match token.kind {
            Kind::End => Ok(expr),
            Kind::Close => Err(format!(
                "unbalanced parenthesis: `)` at column {} has no matching `(`; remove it or add a `(` before it.",
                token.col
            )),
            _ => Err(self.missing_operator()),
        }
    }

    fn peek(&self) -> &Token {
        // The token list always ends with `End`, which is never consumed.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn previous(&self) -> Option<&Token> {
        self.pos.checked_sub(1).map(|p| &self.tokens[p])
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.pos += 1;
        }
        token
    }

    fn enter(&mut self, col: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "expression is nested too deeply at column {col}: more than {MAX_DEPTH} levels of \
                 parentheses, function calls, signs or powers. Simplify it or split it into steps."
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.chain(&[Op::Add, Op::Sub], Self::term)
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.chain(&[Op::Mul, Op::Div, Op::Rem], Self::unary)
    }

    fn chain(
        &mut self,
        ops: &[Op],
        operand: fn(&mut Self) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Kind::Op(op) = self.peek().kind {
            if !ops.contains(&op) {
                break;
            }
            let col = self.advance().col;
            rest.push((op, col, operand(self)?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Chain {
                first: Box::new(first),
                rest,
            }
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek().kind {
            Kind::Op(Op::Sub) => {
                let col = self.advance().col;
                self.enter(col)?;
                let operand = self.unary()?;
                self.leave();
                Ok(match operand {
                    Expr::Num(n) => Expr::Num(-n),
                    other => Expr::Neg(Box::new(other)),
                })
            }
            Kind::Op(Op::Add) => {
                let col = self.advance().col;
                self.enter(col)?;
                let operand = self.unary()?;
                self.leave();
                Ok(operand)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.primary()?;
        if self.peek().kind != Kind::Op(Op::Pow) {
            return Ok(base);
        }
        let col = self.advance().col;
        self.enter(col)?;
        let exponent = self.unary()?;
        self.leave();
        Ok(Expr::Pow {
            base: Box::new(base),
            exponent: Box::new(exponent),
            col,
        })
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.advance();
        match token.kind {
            Kind::Num(n) => Ok(Expr::Num(n)),
            Kind::Name(ref name) => self.name(&token, name),
            Kind::Open => {
                self.enter(token.col)?;
                let inner = self.expr()?;
                self.close(token.col)?;
                self.leave();
                Ok(inner)
            }
            Kind::End => Err(match self.previous_before(&token) {
                Some(prev) => format!(
                    "expression ends unexpectedly after `{}` at column {}; expected {OPERAND} after it.",
                    prev.text, prev.col
                ),
                None => format!("expression is incomplete; expected {OPERAND}."),
            }),
            Kind::Close if matches!(self.previous_before(&token), Some(t) if t.kind == Kind::Open) => {
                Err(format!(
                    "empty parentheses `()` ending at column {}; put an expression inside them.",
                    token.col
                ))
            }
            Kind::Comma => Err(comma_error(token.col)),
            Kind::Op(_) | Kind::Close => Err(format!(
                "expected {OPERAND} at column {} but found `{}`.",
                token.col, token.text
            )),
        }
    }

    /// The token before `token`, which `advance` may or may not have stepped past.
    fn previous_before(&self, token: &Token) -> Option<&Token> {
        if token.kind == Kind::End {
            // `End` is never consumed, so the previous token is the one at pos - 1.
            self.previous()
        } else {
            self.pos.checked_sub(2).map(|p| &self.tokens[p])
        }
    }

    /// Expects the `)` matching the `(` at `open_col`.
    fn close(&mut self, open_col: usize) -> Result<(), String> {
        let token = self.peek();
        match token.kind {
            Kind::Close => {
                self.advance();
                Ok(())
            }
            Kind::End => Err(format!(
                "unbalanced parenthesis: `(` at column {open_col} is never closed; add a `)`."
            )),
            Kind::Comma => Err(comma_error(token.col)),
            _ => Err(self.missing_operator()),
        }
    }

    /// For a number, name or `(` that directly follows a complete operand.
    fn missing_operator(&self) -> String {
        let token = self.peek();
        if token.kind == Kind::Comma {
            return comma_error(token.col);
        }
        let before = self.previous().map(|t| t.text.as_str()).unwrap_or("");
        format!(
            "missing operator between `{before}` and `{}` at column {}; multiplication must be \
             written out, e.g. `2*pi` or `3*(1+2)`.",
            token.text, token.col
        )
    }

    fn name(&mut self, token: &Token, name: &str) -> Result<Expr, String> {
        let called = self.peek().kind == Kind::Open;
        let col = token.col;
        let shown = &token.text;
        if let Some(value) = constant(name) {
            if called {
                return Err(format!(
                    "`{shown}` at column {col} is a constant, not a function; to multiply, write `{shown}*(...)`."
                ));
            }
            return Ok(Expr::Num(value));
        }
        let Some(info) = lookup(name) else {
            return Err(if called {
                let hint = match name {
                    "log" => {
                        " Use `ln` for the natural logarithm, `log10` for base 10 or `log2` for base 2."
                    }
                    "power" => " Use `pow(base, exponent)` or `base ^ exponent`.",
                    "root" => " Use `sqrt(x)`, `cbrt(x)` or `x^(1/n)`.",
                    _ => "",
                };
                format!(
                    "unknown function `{shown}` at column {col}.{hint} Known functions: {}.",
                    function_names()
                )
            } else {
                format!(
                    "unknown name `{shown}` at column {col}: variables are not supported and the \
                     only constants are `pi` and `e`. Substitute its numeric value."
                )
            });
        };
        if !called {
            return Err(format!(
                "`{shown}` at column {col} is a function; call it with parentheses, e.g. `{}`.",
                info.usage
            ));
        }
        let open = self.advance();
        self.enter(open.col)?;
        let mut args = Vec::new();
        if self.peek().kind != Kind::Close {
            args.push(self.expr()?);
            while self.peek().kind == Kind::Comma {
                self.advance();
                args.push(self.expr()?);
            }
        }
        self.close(open.col)?;
        self.leave();
        if args.len() < info.min_args || args.len() > info.max_args {
            let expected = match (info.min_args, info.max_args) {
                (1, 1) => "exactly 1 argument".to_string(),
                (min, max) if min == max => format!("exactly {min} arguments"),
                (1, usize::MAX) => "at least 1 argument".to_string(),
                (min, max) => format!("{min} or {max} arguments"),
            };
            return Err(format!(
                "`{shown}` at column {col} takes {expected} ({}) but was given {}.",
                info.usage,
                args.len()
            ));
        }
        Ok(Expr::Call {
            func: info.func,
            col,
            args,
        })
    }
}

fn comma_error(col: usize) -> String {
    format!(
        "unexpected `,` at column {col}: commas only separate function arguments, as in \
         `max(1, 2)`. Do not use thousands separators (write `1000`, not `1,000`)."
    )
}

// ---------------------------------------------------------------------------
// Evaluation

impl Expr {
    fn eval(&self) -> Result<f64, String> {
        match self {
            Expr::Num(n) => Ok(*n),
            Expr::Neg(inner) => Ok(-inner.eval()?),
            Expr::Chain { first, rest } => {
                let mut acc = first.eval()?;
                for (op, col, operand) in rest {
                    acc = binary(*op, acc, operand.eval()?, *col)?;
                }
                Ok(acc)
            }
            Expr::Pow {
                base,
                exponent,
                col,
            } => binary(Op::Pow, base.eval()?, exponent.eval()?, *col),
            Expr::Call { func, col, args } => {
                let values = args.iter().map(Expr::eval).collect::<Result<Vec<_>, _>>()?;
                call(*func, &values, *col)
            }
        }
    }
}

fn binary(op: Op, a: f64, b: f64, col: usize) -> Result<f64, String> {
    let value = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => {
            if b == 0.0 {
                return Err(format!(
                    "division by zero at column {col}: `{} / 0` is undefined.",
                    num(a)
                ));
            }
            a / b
        }
        Op::Rem => {
            if b == 0.0 {
                return Err(format!(
                    "division by zero at column {col}: the remainder `{} % 0` is undefined.",
                    num(a)
                ));
            }
            a % b
        }
        Op::Pow => {
            if a == 0.0 && b < 0.0 {
                return Err(format!(
                    "division by zero at column {col}: 0 raised to the negative power {} is undefined.",
                    num(b)
                ));
            }
            if a < 0.0 && b.fract() != 0.0 {
                return Err(format!(
                    "`{}^{}` at column {col} is not a real number: a negative base needs a whole-number \
                     exponent. For an odd root of a negative number use `cbrt(x)` or `-(abs(x)^(1/n))`.",
                    paren(a),
                    paren(b)
                ));
            }
            a.powf(b)
        }
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(overflow(op.symbol(), col))
    }
}

fn call(func: Func, args: &[f64], col: usize) -> Result<f64, String> {
    let name = info(func).name;
    let x = args.first().copied().unwrap_or(0.0);
    let domain = |requirement: &str| {
        Err(format!(
            "`{name}` at column {col} {requirement}, but got {}; the result would not be a real number.",
            num(x)
        ))
    };
    let value = match func {
        Func::Abs => x.abs(),
        Func::Acos | Func::Asin if !(-1.0..=1.0).contains(&x) => {
            return domain("needs an argument between -1 and 1");
        }
        Func::Acos => x.acos(),
        Func::Asin => x.asin(),
        Func::Atan => x.atan(),
        Func::Atan2 => x.atan2(args[1]),
        Func::Cbrt => x.cbrt(),
        Func::Ceil => x.ceil(),
        Func::Cos => x.cos(),
        Func::Exp => x.exp(),
        Func::Floor => x.floor(),
        Func::Ln | Func::Log10 | Func::Log2 if x <= 0.0 => {
            return domain("needs a positive argument");
        }
        Func::Ln => x.ln(),
        Func::Log10 => x.log10(),
        Func::Log2 => x.log2(),
        Func::Max => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Func::Min => args.iter().copied().fold(f64::INFINITY, f64::min),
        Func::Pow => return binary(Op::Pow, x, args[1], col),
        Func::Round => match args.get(1) {
            None => x.round(),
            Some(&digits) => {
                if digits.fract() != 0.0 || !(-308.0..=308.0).contains(&digits) {
                    return Err(format!(
                        "`round` at column {col}: the number of digits must be a whole number \
                         between -308 and 308, but got {}.",
                        num(digits)
                    ));
                }
                round_to(x, digits as i32)
            }
        },
        Func::Sin => x.sin(),
        Func::Sqrt if x < 0.0 => return domain("needs a non-negative argument"),
        Func::Sqrt => x.sqrt(),
        Func::Tan => x.tan(),
        Func::Trunc => x.trunc(),
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(overflow(name, col))
    }
}

/// Rounds `x` to `digits` decimal places (negative: to tens, hundreds...), halves away
/// from zero, working on the shortest decimal form of `x` so that `round(2.345, 2)`
/// is 2.35 as a person expects, not 2.34 as `2.345` is stored in binary.
fn round_to(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Shortest round-trip form, e.g. "2.345e0" or "1.5e-7".
    let formatted = format!("{:e}", x.abs());
    let Some((mantissa, exponent)) = formatted.split_once('e') else {
        return x;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return x;
    };
    let mut ds: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    // Digit i has place value 10^(exponent - i); keep those at or above 10^-digits.
    let keep = exponent + digits + 1;
    if keep >= ds.len() as i32 {
        return x;
    }
    let round_up = keep >= 0 && ds[keep as usize] >= 5;
    ds.truncate(keep.max(0) as usize);
    if round_up {
        let mut i = ds.len();
        loop {
            if i == 0 {
                ds.insert(0, 1);
                break;
            }
            i -= 1;
            if ds[i] == 9 {
                ds[i] = 0;
            } else {
                ds[i] += 1;
                break;
            }
        }
    }
    if ds.is_empty() {
        return 0.0;
    }
    let integer: String = ds.iter().map(|d| char::from(b'0' + d)).collect();
    let rounded: f64 = format!("{integer}e{}", -digits).parse().unwrap_or(x.abs());
    rounded.copysign(x)
}

fn overflow(what: &str, col: usize) -> String {
    format!(
        "overflow at column {col}: `{what}` produced a number beyond about ±1.8e308, the largest \
         representable. Rescale the computation (for example work in thousands) or use smaller inputs."
    )
}

/// A number as it should appear in a message: short, and in scientific notation when
/// very large or small.
fn num(x: f64) -> String {
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-6..1e15).contains(&magnitude) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A number for display inside an expression, parenthesised when negative.
fn paren(x: f64) -> String {
    if x < 0.0 {
        format!("({})", num(x))
    } else {
        num(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{E, PI};

    fn ok(expr: &str) -> f64 {
        match evaluate(expr) {
            Ok(v) => v,
            Err(e) => panic!("`{expr}` failed: {e}"),
        }
    }

    fn err(expr: &str) -> String {
        match evaluate(expr) {
            Ok(v) => panic!("`{expr}` should fail but gave {v}"),
            Err(e) => e,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[track_caller]
    fn check(expr: &str, expected: f64) {
        let got = ok(expr);
        assert!(
            close(got, expected),
            "`{expr}` gave {got}, expected {expected}"
        );
    }

    #[track_caller]
    fn fails(expr: &str, needles: &[&str]) {
        let message = err(expr);
        for needle in needles {
            assert!(
                message.contains(needle),
                "error for `{expr}` should contain `{needle}`: {message}"
            );
        }
    }

    #[test]
    fn numbers() {
        check("42", 42.0);
        check("3.25", 3.25);
        check(".5", 0.5);
        check("5.", 5.0);
        check("6.02e23", 6.02e23);
        check("1.5E-3", 0.0015);
        check("2e+3", 2000.0);
        check("  7  ", 7.0);
        check("1e-400", 0.0);
    }

    #[test]
    fn precedence_and_associativity() {
        check("1 + 2 * 3", 7.0);
        check("(1 + 2) * 3", 9.0);
        check("10 - 4 - 3", 3.0);
        check("100 / 10 / 5", 2.0);
        check("2 * 3 % 4", 2.0);
        check("7 % 4 * 2", 6.0);
        check("2 ^ 3 ^ 2", 512.0);
        check("(2 ^ 3) ^ 2", 64.0);
        check("2 ** 10", 1024.0);
        check("2 * 3 ^ 2", 18.0);
        check("1 - 2 + 3", 2.0);
        check("8 / 2 * 4", 16.0);
    }

    #[test]
    fn unary_signs() {
        check("-3", -3.0);
        check("+3", 3.0);
        check("--3", 3.0);
        check("-+-3", 3.0);
        check("-2 ^ 2", -4.0);
        check("(-2) ^ 2", 4.0);
        check("2 ^ -1", 0.5);
        check("2 * -3", -6.0);
        check("3 - -3", 6.0);
        check("-(1 + 2)", -3.0);
        check("-2^-2", -0.25);
    }

    #[test]
    fn remainder_follows_dividend_sign() {
        check("7 % 3", 1.0);
        check("-7 % 3", -1.0);
        check("7 % -3", 1.0);
        check("5.5 % 2", 1.5);
    }

    #[test]
    fn constants_and_functions() {
        check("pi", PI);
        check("e", E);
        check("PI", PI);
        check("π", PI);
        check("2*pi", 2.0 * PI);
        check("sqrt(16)", 4.0);
        check("cbrt(-27)", -3.0);
        check("pow(2, 10)", 1024.0);
        check("abs(-4.5)", 4.5);
        check("ln(e)", 1.0);
        check("log10(1000)", 3.0);
        check("log2(8)", 3.0);
        check("exp(1)", E);
        check("sin(pi/2)", 1.0);
        check("cos(0)", 1.0);
        check("tan(pi/4)", 1.0);
        check("asin(1)", PI / 2.0);
        check("acos(1)", 0.0);
        check("atan(1)", PI / 4.0);
        check("atan2(1, 1)", PI / 4.0);
        check("floor(-2.5)", -3.0);
        check("ceil(2.1)", 3.0);
        check("trunc(-2.7)", -2.0);
        check("round(2.5)", 3.0);
        check("round(-2.5)", -3.0);
        check("min(3, 1, 2)", 1.0);
        check("max(3, 1, 2)", 3.0);
        check("max(7)", 7.0);
        check("SQRT(4)", 2.0);
        check("sqrt(sqrt(16))", 2.0);
        check("max(1, min(5, 3) * 2)", 6.0);
    }

    #[test]
    fn rounding_to_digits_is_decimal() {
        check("round(2.345, 2)", 2.35);
        check("round(-2.345, 2)", -2.35);
        check("round(1.005, 2)", 1.01);
        check("round(1.23456, 3)", 1.235);
        check("round(1234.5678, 0)", 1235.0);
        check("round(1234, -2)", 1200.0);
        check("round(1250, -2)", 1300.0);
        check("round(0.0004, 2)", 0.0);
        check("round(0.005, 2)", 0.01);
        check("round(9.999, 2)", 10.0);
        check("round(999.9, -3)", 1000.0);
        check("round(0.4, -1)", 0.0);
        check("round(1.5, 20)", 1.5);
        check("round(123456789.123456789, 4)", 123456789.1235);
        fails("round(1.5, 1.5)", &["whole number"]);
    }

    #[test]
    fn realistic_expressions() {
        check("(1 + 0.05)^10 * 2000", 1.05f64.powi(10) * 2000.0);
        check("15/100*80", 12.0);
        check("sqrt(3^2 + 4^2)", 5.0);
        check(
            "1000 * (1 + 0.07/12)^(12*30)",
            1000.0 * (1.0 + 0.07 / 12.0f64).powf(360.0),
        );
        check("sin(30*pi/180)", 0.5);
        check("2 × 3 ÷ 4 − 1", 0.5);
    }

    #[test]
    fn results_are_rounded_to_15_significant_digits() {
        assert_eq!(ok("0.1 + 0.2"), 0.3);
        assert_eq!(ok("sin(30*pi/180)"), 0.5);
        assert_eq!(ok("1/3"), 0.333333333333333);
        assert_eq!(ok("2/3"), 0.666666666666667);
        assert_eq!(ok("123456789012345678"), 1.23456789012346e17);
        assert_eq!(ok("(1 + 0.05)^10 * 2000"), 3257.78925355488);
        assert_eq!(ok("1e-300 * 3"), 3e-300);
        assert_eq!(ok("5e-324"), 4.94065645841247e-324);
        assert_eq!(ok("1.7976931348623157e308"), f64::MAX);
    }

    #[test]
    fn negative_zero_is_normalised() {
        let v = ok("-0");
        assert!(v == 0.0 && v.is_sign_positive());
        let v = ok("0 * -1");
        assert!(v.is_sign_positive());
    }

    #[test]
    fn long_flat_sums_are_fine() {
        let expr = vec!["1"; 2000].join("+");
        check(&expr, 2000.0);
    }

    #[test]
    fn empty_and_too_long() {
        fails("", &["empty"]);
        fails("   ", &["empty"]);
        let long = "1+".repeat(2048) + "1";
        fails(&long, &["4097 characters", "limit is 4096"]);
    }

    #[test]
    fn nesting_limit() {
        let deep = "(".repeat(MAX_DEPTH) + "1" + &")".repeat(MAX_DEPTH);
        check(&deep, 1.0);
        let too_deep = "(".repeat(MAX_DEPTH + 1) + "1" + &")".repeat(MAX_DEPTH + 1);
        fails(&too_deep, &["nested too deeply"]);
        fails(&("-".repeat(500) + "1"), &["nested too deeply"]);
        fails(
            &("sqrt(".repeat(200) + "1" + &")".repeat(200)),
            &["nested too deeply"],
        );
        fails(&"2^".repeat(300), &["nested too deeply"]);
    }

    #[test]
    fn unexpected_characters() {
        fails(
            "1 + $2",
            &["unexpected character `$` at column 5", "currency"],
        );
        fails("2 # 3", &["`#` at column 3", "sqrt"]);
        fails("x = 3", &["`=` at column 3"]);
        fails("1 + 1 = 2", &["`=` at column 7", "without `=`"]);
        fails("[1+2]", &["`[` at column 1", "parentheses"]);
        fails("5!", &["`!` at column 2", "Factorials"]);
        fails("1 + .", &["`.` at column 5"]);
    }

    #[test]
    fn malformed_numbers() {
        fails("1.2.3", &["malformed number `1.2.3` at column 1"]);
        fails("1e999", &["too large"]);
        fails("2e", &["missing operator between `2` and `e` at column 2"]);
    }

    #[test]
    fn unbalanced_parentheses() {
        fails("(1 + 2", &["`(` at column 1 is never closed"]);
        fails("((1 + 2)", &["`(` at column 1 is never closed"]);
        fails("1 + 2)", &["`)` at column 6 has no matching `(`"]);
        fails("sqrt(4", &["`(` at column 5 is never closed"]);
        fails("()", &["empty parentheses"]);
        fails("2 * ()", &["empty parentheses"]);
    }

    #[test]
    fn missing_operands_and_operators() {
        fails("1 +", &["ends unexpectedly after `+` at column 3"]);
        fails("* 2", &["expected a number", "column 1", "`*`"]);
        fails("2 * * 3", &["column 5", "`*`"]);
        fails("2 3", &["missing operator between `2` and `3` at column 3"]);
        fails("2pi", &["missing operator between `2` and `pi`", "2*pi"]);
        fails("2(3)", &["missing operator between `2` and `(`"]);
        fails("(1)(2)", &["missing operator between `)` and `(`"]);
        fails("1,000", &["unexpected `,` at column 2", "thousands"]);
        fails("(1, 2)", &["unexpected `,` at column 3"]);
        fails("-", &["ends unexpectedly after `-`"]);
    }

    #[test]
    fn names() {
        fails(
            "foo(2)",
            &["unknown function `foo` at column 1", "abs, acos", "trunc"],
        );
        fails("log(100)", &["unknown function `log`", "log10"]);
        fails("x + 1", &["unknown name `x` at column 1", "variables"]);
        fails("sqrt", &["`sqrt` at column 1 is a function", "sqrt(x)"]);
        fails("sqrt 4", &["is a function"]);
        fails("pi(2)", &["constant, not a function"]);
    }

    #[test]
    fn argument_counts() {
        fails(
            "sqrt()",
            &["`sqrt` at column 1 takes exactly 1 argument (sqrt(x)) but was given 0"],
        );
        fails("sqrt(1, 2)", &["takes exactly 1 argument", "given 2"]);
        fails(
            "pow(2)",
            &["`pow` at column 1 takes exactly 2 arguments (pow(base, exponent)) but was given 1"],
        );
        fails("max()", &["at least 1 argument"]);
        fails("round(1, 2, 3)", &["1 or 2 arguments"]);
        fails("1 + atan2(1)", &["`atan2` at column 5"]);
        fails("max(1,)", &["expected a number", "column 7", "`)`"]);
        fails("max(1,,2)", &["unexpected `,` at column 7"]);
    }

    #[test]
    fn arithmetic_errors() {
        fails("1 / 0", &["division by zero at column 3"]);
        fails("1 / (2 - 2)", &["division by zero at column 3"]);
        fails("5 % 0", &["division by zero", "remainder"]);
        fails("0 ^ -1", &["division by zero", "negative power"]);
        fails(
            "sqrt(-4)",
            &["`sqrt` at column 1 needs a non-negative argument, but got -4"],
        );
        fails(
            "ln(0)",
            &["`ln` at column 1 needs a positive argument, but got 0"],
        );
        fails("log10(-1)", &["positive argument"]);
        fails("log2(0)", &["positive argument"]);
        fails("asin(2)", &["between -1 and 1", "got 2"]);
        fails("acos(-1.5)", &["between -1 and 1"]);
        fails("(-8)^(1/3)", &["not a real number", "cbrt"]);
        fails("pow(-8, 0.5)", &["not a real number"]);
        fails("10^400", &["overflow at column 3", "`^`"]);
        fails("exp(1000)", &["overflow", "`exp`"]);
        fails("1e308 * 10", &["overflow at column 7"]);
        fails("1e308 + 1e308", &["overflow"]);
    }

    #[test]
    fn syntax_errors_win_over_arithmetic_errors() {
        fails("1/0 + (2", &["never closed"]);
        fails("1/0 + (", &["ends unexpectedly after `(` at column 7"]);
    }

    #[test]
    fn messages_format_numbers_compactly() {
        assert_eq!(num(1e300), "1e300");
        assert_eq!(num(-2.5), "-2.5");
        assert_eq!(num(1e-9), "1e-9");
        assert_eq!(paren(-3.0), "(-3)");
    }
}
