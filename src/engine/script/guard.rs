//! Size guards for the standard library (engine layer): the Rhai functions whose result can be
//! far larger than their arguments, registered again so that the result's size is worked out
//! and checked — against the engine's size limits and the memory budget
//! ([`crate::budget`]) — before a byte of it is allocated. Rhai itself checks sizes only after
//! a function returns, when a result of 10¹² bytes has already been asked of the allocator.
//!
//! The audit of every function the standard library exposes (Rhai 1.27):
//!
//! | functions | growth | handled |
//! |---|---|---|
//! | `replace` (string or character, by string or character) | product of the inputs | here |
//! | `pad` of a string | chosen by the caller (the limit counts characters, up to 4 bytes each) | here |
//! | `split`, `split_rev`, `to_chars` of a string | an array element per character: 16 bytes and more per input byte | here |
//! | `blob(len)`, `pad` of an array (a copy of the item, an array or map copied whole, for each new element) or a BLOB, `to_array` of a BLOB | chosen by the caller, or 16 bytes per byte | here |
//! | `parse_json` | about 30 bytes of values per input byte | here |
//! | `+`, `+=`, `append`, `insert`, `push`, `mixin`, `fill_with`, `to_blob`, `as_string` | at most the sum of the inputs | Rhai's checks after the call |
//! | `to_string`, `to_debug`, `print`, `debug` of an array or map (so string interpolation and `+` with a string too), `to_json` of a map | a copy of every element, and one string shared by a million elements is written a million times | here |
//! | `to_string`, `to_debug` of anything else | at most 10 times the value | Rhai's checks after the call |
//! | `to_upper`, `to_lower` | at most 3 times the string | Rhai's checks after the call |
//! | `map`, `filter`, `zip`, `reduce`, `sort`, `order`, `dedup`… | one call of a script function per element: counted operations | operation limit |
//! | `range`, `chars`, `bits` | lazy iterators | operation limit |
//! | everything else (numbers, searching, slicing, `sub_string`, `crop`, `extract`, `truncate`…) | no larger than the inputs | — |
//!
//! What the table lets through stays within a small multiple of one value's size limit, and
//! the budget, checked at every operation, stops the script at the next one.

use crate::budget;
use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Bytes one array element costs at least (a `Dynamic`); a string element costs more.
const ELEMENT: usize = std::mem::size_of::<Dynamic>();
/// Bytes one short string element costs: the `Dynamic` and its shared string.
const PIECE: usize = ELEMENT + 48;
/// Bytes of values `parse_json` may build per byte of JSON text.
const JSON_GROWTH: usize = 40;

fn too_large(what: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge(what.to_string(), rhai::Position::NONE).into()
}

/// The error for an allocation the budget refuses (it ends the script; `catch` cannot keep
/// it running).
pub fn over_budget(e: budget::OverBudget) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(
        Dynamic::from(super::Stop::OutOfMemory(e.limit)),
        rhai::Position::NONE,
    )
    .into()
}

/// Size limits checked by the guarded functions as values grow, one step at a time. An
/// engine that leaves Rhai's own limits off (they walk a whole array after every `push`,
/// which makes filling one quadratic) carries these in its default tag; otherwise the
/// engine's own are used. 0: no limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct SizeLimits {
    pub string: usize,
    pub array: usize,
    pub map: usize,
}

/// The size limits in force for a call.
pub fn limits(ctx: &NativeCallContext) -> SizeLimits {
    let e = ctx.engine();
    let own = SizeLimits {
        string: e.max_string_size(),
        array: e.max_array_size(),
        map: e.max_map_size(),
    };
    if own.string > 0 || own.array > 0 || own.map > 0 {
        return own;
    }
    ctx.tag()
        .and_then(|t| t.clone().try_cast::<SizeLimits>())
        .unwrap_or_default()
}

/// A string of `bytes` may be built.
fn string_fits(ctx: &NativeCallContext, bytes: usize) -> Res<()> {
    let max = limits(ctx).string;
    if max > 0 && bytes > max {
        return Err(too_large("Length of string"));
    }
    budget::admit(bytes).map_err(over_budget)
}

/// An array of `elements` costing `bytes` may be built.
fn array_fits(ctx: &NativeCallContext, elements: usize, bytes: usize) -> Res<()> {
    let max = limits(ctx).array;
    if max > 0 && elements > max {
        return Err(too_large("Size of array/BLOB"));
    }
    budget::admit(bytes).map_err(over_budget)
}

/// Bytes a copy of `v` takes beyond its own `Dynamic`: arrays, maps and BLOBs are copied
/// whole, strings are shared. Counted until it passes `max` (then more than `max`).
fn copy_cost(v: &Dynamic, max: usize) -> usize {
    fn walk(v: &Dynamic, max: usize, n: &mut usize) {
        if *n > max {
            return;
        }
        if let Some(a) = v.read_lock::<Array>() {
            *n += a.len().saturating_mul(ELEMENT);
            for x in a.iter() {
                walk(x, max, n);
                if *n > max {
                    return;
                }
            }
        } else if let Some(m) = v.read_lock::<rhai::Map>() {
            *n += m.len().saturating_mul(PIECE);
            for x in m.values() {
                walk(x, max, n);
                if *n > max {
                    return;
                }
            }
        } else if let Some(b) = v.read_lock::<Blob>() {
            *n += b.len();
        }
    }
    let mut n = 0;
    walk(v, max, &mut n);
    n
}

/// What the budget of this thread has left (all there is without one): where a count can
/// stop.
fn budget_room() -> usize {
    match budget::current() {
        Some(b) if b.limit() > 0 => b.limit().saturating_sub(b.used()).saturating_add(1),
        _ => usize::MAX / 2,
    }
}

/// The length of `s` with every `find` replaced by `sub_len` bytes.
fn replaced_len(s: &str, find: &str, sub_len: usize) -> usize {
    if find.is_empty() {
        // An empty pattern matches before every character and at the end.
        let n = s.chars().count() + 1;
        return s.len().saturating_add(n.saturating_mul(sub_len));
    }
    let n = s.matches(find).count();
    (s.len() - n * find.len()).saturating_add(n.saturating_mul(sub_len))
}

fn replace(ctx: &NativeCallContext, s: &mut ImmutableString, find: &str, sub: &str) -> Res<()> {
    if s.is_empty() {
        return Ok(());
    }
    string_fits(ctx, replaced_len(s, find, sub.len()))?;
    *s = s.replace(find, sub).into();
    Ok(())
}

fn pad_string(ctx: &NativeCallContext, s: &mut ImmutableString, len: i64, pad: &str) -> Res<()> {
    let Ok(len) = usize::try_from(len) else {
        return Ok(());
    };
    let have = s.chars().count();
    if len <= have || pad.is_empty() {
        return Ok(());
    }
    let missing = len - have;
    // Whole copies of the padding, then as many of its characters as still fit.
    let per = pad.chars().count();
    let whole = missing / per;
    let rest: usize = pad.chars().take(missing % per).map(char::len_utf8).sum();
    let bytes = s
        .len()
        .saturating_add(whole.saturating_mul(pad.len()))
        .saturating_add(rest);
    string_fits(ctx, bytes)?;
    let p = s.make_mut();
    for _ in 0..whole {
        p.push_str(pad);
    }
    p.extend(pad.chars().take(missing % per));
    Ok(())
}

/// How many pieces `split` makes of `s` at `delimiter`.
fn pieces(s: &str, delimiter: &str) -> usize {
    if delimiter.is_empty() {
        // Empty pieces before the first and after the last character.
        s.chars().count() + 2
    } else {
        s.matches(delimiter).count() + 1
    }
}

fn pieces_fit(ctx: &NativeCallContext, n: usize) -> Res<()> {
    array_fits(ctx, n, n.saturating_mul(PIECE))
}

fn piece(s: &str) -> Dynamic {
    s.into()
}

fn split(ctx: &NativeCallContext, s: &str, delimiter: &str, segments: Option<i64>) -> Res<Array> {
    let mut n = pieces(s, delimiter);
    if let Some(seg) = segments {
        n = n.min(usize::try_from(seg.max(1)).unwrap_or(usize::MAX));
    }
    pieces_fit(ctx, n)?;
    Ok(match segments {
        None => s.split(delimiter).map(piece).collect(),
        Some(_) => s.splitn(n, delimiter).map(piece).collect(),
    })
}

fn split_rev(
    ctx: &NativeCallContext,
    s: &str,
    delimiter: &str,
    segments: Option<i64>,
) -> Res<Array> {
    let mut n = pieces(s, delimiter);
    if let Some(seg) = segments {
        n = n.min(usize::try_from(seg.max(1)).unwrap_or(usize::MAX));
    }
    pieces_fit(ctx, n)?;
    Ok(match segments {
        None => s.rsplit(delimiter).map(piece).collect(),
        Some(_) => s.rsplitn(n, delimiter).map(piece).collect(),
    })
}

fn new_blob(ctx: &NativeCallContext, len: i64, value: i64) -> Res<Blob> {
    let Ok(len) = usize::try_from(len) else {
        return Ok(Blob::new());
    };
    array_fits(ctx, len, len)?;
    Ok(vec![(value & 0xff) as u8; len])
}

/// How a value is written as text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// As `to_debug` (and `to_json`) write it: strings quoted with Rust's escapes.
    Debug,
    /// As `serde_json` writes it, and `pretty`: indented, an element a line.
    Json { pretty: bool },
}

/// Bytes the text of `v` takes at most, counted until it passes `max` (then more than `max`),
/// strings with their quotes and escapes. Elements shared by many places of the value count
/// once for each, as the text repeats them.
pub fn shown_len(v: &Dynamic, style: Style, max: usize) -> usize {
    fn text(s: &str, style: Style) -> usize {
        let escaped: usize = match style {
            Style::Json { .. } => s
                .chars()
                .map(|c| match c {
                    '"' | '\\' => 2,
                    c if (c as u32) < 0x20 => 6,
                    c => c.len_utf8(),
                })
                .sum(),
            // By bytes, for speed: an escaped ASCII character takes 2 bytes (`\n`) or at
            // most 6 (`\u{7f}`), any other at most 3.5 per byte (`\u{7ff}` for two bytes).
            Style::Debug => s
                .bytes()
                .map(|b| match b {
                    b' '..=b'~' if b != b'"' && b != b'\\' => 1,
                    b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0 => 2,
                    0x80.. => 4,
                    _ => 6,
                })
                .sum(),
        };
        escaped + 2
    }
    fn walk(v: &Dynamic, style: Style, depth: usize, max: usize, n: &mut usize) {
        if *n > max {
            return;
        }
        // Each element of a pretty JSON text starts a line, indented by its depth.
        let per_element = match style {
            Style::Json { pretty: true } => 3 + 2 * (depth + 1),
            _ => 2,
        };
        if let Some(s) = v.read_lock::<ImmutableString>() {
            *n += text(&s, style);
        } else if let Some(a) = v.read_lock::<Array>() {
            *n += 2 + per_element;
            for x in a.iter() {
                *n += per_element;
                walk(x, style, depth + 1, max, n);
                if *n > max {
                    return;
                }
            }
        } else if let Some(m) = v.read_lock::<rhai::Map>() {
            *n += 3 + per_element;
            for (k, x) in m.iter() {
                *n += text(k, style) + 2 + per_element;
                walk(x, style, depth + 1, max, n);
                if *n > max {
                    return;
                }
            }
        } else if let Some(f) = v.read_lock::<rhai::FnPtr>() {
            // Its name, and the values curried into it (JSON writes those).
            *n += text(f.fn_name(), style) + 8;
            for x in f.iter_curry() {
                *n += per_element;
                walk(x, style, depth + 1, max, n);
            }
        } else if let Some(b) = v.read_lock::<Blob>() {
            *n += b.len().saturating_mul(4) + 16;
        } else if let Ok(i) = v.as_int() {
            *n += i.to_string().len();
        } else if let Ok(c) = v.as_char() {
            *n += text(c.encode_utf8(&mut [0; 4]), style);
        } else {
            // Other numbers, booleans, (), timestamps.
            *n += 32;
        }
    }
    let mut n = 0;
    walk(v, style, 0, max, &mut n);
    n
}

/// The text of a value may be built: its size, counted before a byte of it is, fits the
/// string limit and the memory budget.
pub fn text_fits(ctx: &NativeCallContext, v: &Dynamic, style: Style) -> Res<()> {
    let max = match limits(ctx).string {
        0 => usize::MAX / 2,
        m => m,
    };
    let max = max.min(budget::current().map_or(usize::MAX / 2, |b| b.limit().max(1)));
    string_fits(ctx, shown_len(v, style, max))
}

thread_local! {
    /// Why the script on this thread must stop at its next operation (see [`stop_next`]).
    static STOP: std::cell::RefCell<Option<super::Stop>> = const { std::cell::RefCell::new(None) };
}

/// Stops the script at its next operation with `e`, a refused size. Rhai does not pass on an
/// error from the `to_string` it calls for string interpolation, `+` with a string or
/// `print`: it writes the value itself instead, whole, which is the allocation that was
/// refused. So the text is refused with an empty string, and the engine's progress check
/// ([`super::progress_check`]) ends the script with the error.
fn stop_next(e: &EvalAltResult) {
    let stop = match e {
        EvalAltResult::ErrorDataTooLarge(what, _) => super::Stop::TooLarge(what.clone()),
        EvalAltResult::ErrorTerminated(v, _) => match v.clone().try_cast::<super::Stop>() {
            Some(s) => s,
            None => return,
        },
        _ => return,
    };
    STOP.with(|s| *s.borrow_mut() = Some(stop));
}

/// `r`, the end of a script's run, unless a guard asked for a stop that no operation came
/// after to make (the refused text was the script's last step).
pub fn finished<T>(r: Res<T>) -> Res<T> {
    match take_stop() {
        Some(stop) if r.is_ok() => {
            Err(EvalAltResult::ErrorTerminated(Dynamic::from(stop), rhai::Position::NONE).into())
        }
        _ => r,
    }
}

/// The stop a guard asked for on this thread, if any (taken: asked once).
pub fn take_stop() -> Option<super::Stop> {
    STOP.with(|s| s.borrow_mut().take())
}

thread_local! {
    /// Whether the text of a value being written was counted whole already (the elements
    /// of an array are written by the same functions, which need not count them again).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Writes an array or map as Rhai's own functions do (each element through `to_debug`),
/// once its whole text is known to fit. Refused, it is an error for `print` and `debug`
/// (`direct`), which Rhai passes on; else see [`stop_next`].
fn show(ctx: &NativeCallContext, v: &mut Dynamic, direct: bool) -> Res<ImmutableString> {
    let outer = !COUNTED.with(|c| c.get());
    if outer {
        if let Err(e) = text_fits(ctx, v, Style::Debug) {
            if direct {
                return Err(e);
            }
            stop_next(&e);
            return Ok(ImmutableString::new());
        }
        COUNTED.with(|c| c.set(true));
    }
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if self.0 {
                COUNTED.with(|c| c.set(false));
            }
        }
    }
    let _reset = Reset(outer);
    let item = |x: &mut Dynamic| -> Res<String> {
        let shown = ctx.call_native_fn_raw("to_debug", true, &mut [x])?;
        Ok(shown
            .into_immutable_string()
            .map(|s| s.to_string())
            .unwrap_or_default())
    };
    let mut out = String::new();
    if v.is_array() {
        let mut a = v.write_lock::<Array>().expect("an array");
        out.push('[');
        let n = a.len();
        for (i, x) in a.iter_mut().enumerate() {
            out.push_str(&item(x)?);
            if i + 1 < n {
                out.push_str(", ");
            }
        }
        out.push(']');
    } else {
        let mut m = v.write_lock::<rhai::Map>().expect("a map");
        out.push_str("#{");
        let n = m.len();
        for (i, (k, x)) in m.iter_mut().enumerate() {
            out.push_str(&format!("{k:?}: "));
            out.push_str(&item(x)?);
            if i + 1 < n {
                out.push_str(", ");
            }
        }
        out.push('}');
    }
    Ok(out.into())
}

/// Registers the guarded functions on `e`. They take precedence over the standard
/// library's functions of the same name and types.
pub fn register(e: &mut Engine) {
    e.register_fn(
        "replace",
        |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, sub: &str| {
            replace(&ctx, s, find, sub)
        },
    );
    e.register_fn(
        "replace",
        |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, sub: char| {
            replace(&ctx, s, find, sub.encode_utf8(&mut [0; 4]))
        },
    );
    e.register_fn(
        "replace",
        |ctx: NativeCallContext, s: &mut ImmutableString, find: char, sub: &str| {
            replace(&ctx, s, find.encode_utf8(&mut [0; 4]), sub)
        },
    );
    e.register_fn(
        "replace",
        |ctx: NativeCallContext, s: &mut ImmutableString, find: char, sub: char| {
            replace(
                &ctx,
                s,
                find.encode_utf8(&mut [0; 4]),
                sub.encode_utf8(&mut [0; 4]),
            )
        },
    );
    e.register_fn(
        "pad",
        |ctx: NativeCallContext, s: &mut ImmutableString, len: i64, pad: &str| {
            pad_string(&ctx, s, len, pad)
        },
    );
    e.register_fn(
        "pad",
        |ctx: NativeCallContext, s: &mut ImmutableString, len: i64, pad: char| {
            pad_string(&ctx, s, len, pad.encode_utf8(&mut [0; 4]))
        },
    );
    e.register_fn(
        "pad",
        |ctx: NativeCallContext, a: &mut Array, len: i64, item: Dynamic| -> Res<()> {
            let Ok(len) = usize::try_from(len) else {
                return Ok(());
            };
            if len > a.len() {
                // Every new element is a copy of `item`, an array or map copied whole.
                let per = ELEMENT + copy_cost(&item, budget_room());
                array_fits(&ctx, len, (len - a.len()).saturating_mul(per))?;
                a.resize(len, item);
            }
            Ok(())
        },
    );
    e.register_fn(
        "pad",
        |ctx: NativeCallContext, b: &mut Blob, len: i64, value: i64| -> Res<()> {
            let Ok(len) = usize::try_from(len) else {
                return Ok(());
            };
            if len > b.len() {
                array_fits(&ctx, len, len - b.len())?;
                b.resize(len, (value & 0xff) as u8);
            }
            Ok(())
        },
    );
    e.register_fn("blob", |ctx: NativeCallContext, len: i64| {
        new_blob(&ctx, len, 0)
    });
    e.register_fn("blob", |ctx: NativeCallContext, len: i64, value: i64| {
        new_blob(&ctx, len, value)
    });
    e.register_fn(
        "to_array",
        |ctx: NativeCallContext, b: &mut Blob| -> Res<Array> {
            array_fits(&ctx, b.len(), b.len().saturating_mul(ELEMENT))?;
            Ok(b.iter().map(|x| Dynamic::from(i64::from(*x))).collect())
        },
    );
    e.register_fn(
        "to_chars",
        |ctx: NativeCallContext, s: &str| -> Res<Array> {
            let n = s.chars().count();
            array_fits(&ctx, n, n.saturating_mul(ELEMENT))?;
            Ok(s.chars().map(Dynamic::from).collect())
        },
    );
    e.register_fn(
        "split",
        |ctx: NativeCallContext, s: &mut ImmutableString| -> Res<Array> {
            if s.is_empty() {
                return Ok(vec![Dynamic::from(s.clone())]);
            }
            pieces_fit(&ctx, s.split_whitespace().count())?;
            Ok(s.split_whitespace().map(piece).collect())
        },
    );
    e.register_fn(
        "split",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: &str| split(&ctx, s, d, None),
    );
    e.register_fn(
        "split",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: char| {
            split(&ctx, s, d.encode_utf8(&mut [0; 4]), None)
        },
    );
    e.register_fn(
        "split",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: &str, n: i64| {
            split(&ctx, s, d, Some(n))
        },
    );
    e.register_fn(
        "split",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: char, n: i64| {
            split(&ctx, s, d.encode_utf8(&mut [0; 4]), Some(n))
        },
    );
    e.register_fn(
        "split_rev",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: &str| split_rev(&ctx, s, d, None),
    );
    e.register_fn(
        "split_rev",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: char| {
            split_rev(&ctx, s, d.encode_utf8(&mut [0; 4]), None)
        },
    );
    e.register_fn(
        "split_rev",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: &str, n: i64| {
            split_rev(&ctx, s, d, Some(n))
        },
    );
    e.register_fn(
        "split_rev",
        |ctx: NativeCallContext, s: &mut ImmutableString, d: char, n: i64| {
            split_rev(&ctx, s, d.encode_utf8(&mut [0; 4]), Some(n))
        },
    );
    // Arrays grow one step at a time, checked in constant time.
    e.register_fn(
        "push",
        |ctx: NativeCallContext, a: &mut Array, item: Dynamic| -> Res<()> {
            array_fits(&ctx, a.len() + 1, ELEMENT)?;
            a.push(item);
            Ok(())
        },
    );
    e.register_fn(
        "append",
        |ctx: NativeCallContext, a: &mut Array, more: Array| -> Res<()> {
            array_fits(
                &ctx,
                a.len() + more.len(),
                more.len().saturating_mul(ELEMENT),
            )?;
            a.extend(more);
            Ok(())
        },
    );
    e.register_fn(
        "insert",
        |ctx: NativeCallContext, a: &mut Array, at: i64, item: Dynamic| -> Res<()> {
            array_fits(&ctx, a.len() + 1, ELEMENT)?;
            let at = if at < 0 {
                a.len().saturating_sub(at.unsigned_abs() as usize)
            } else {
                (at as usize).min(a.len())
            };
            a.insert(at, item);
            Ok(())
        },
    );
    e.register_fn(
        "+",
        |ctx: NativeCallContext, a: Array, b: Array| -> Res<Array> {
            array_fits(
                &ctx,
                a.len() + b.len(),
                (a.len() + b.len()).saturating_mul(ELEMENT),
            )?;
            let mut a = a;
            a.extend(b);
            Ok(a)
        },
    );
    for name in ["to_string", "to_debug", "print", "debug"] {
        let direct = matches!(name, "print" | "debug");
        e.register_fn(name, move |ctx: NativeCallContext, a: &mut Array| {
            let mut v = Dynamic::from_array(std::mem::take(a));
            let r = show(&ctx, &mut v, direct);
            *a = v.into_array().unwrap_or_default();
            r
        });
        e.register_fn(name, move |ctx: NativeCallContext, m: &mut rhai::Map| {
            let mut v = Dynamic::from_map(std::mem::take(m));
            let r = show(&ctx, &mut v, direct);
            *m = v.try_cast::<rhai::Map>().unwrap_or_default();
            r
        });
    }
    e.register_fn(
        "to_json",
        |ctx: NativeCallContext, m: &mut rhai::Map| -> Res<String> {
            let v = Dynamic::from_map(std::mem::take(m));
            let r = text_fits(&ctx, &v, Style::Debug);
            *m = v.try_cast::<rhai::Map>().unwrap_or_default();
            r?;
            Ok(rhai::format_map_as_json(m))
        },
    );
    e.register_fn(
        "parse_json",
        |ctx: NativeCallContext, json: &str| -> Res<Dynamic> {
            budget::admit(json.len().saturating_mul(JSON_GROWTH)).map_err(over_budget)?;
            ctx.engine().parse_json(json, true).map(Dynamic::from)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut e = Engine::new_raw();
        super::super::register_std(&mut e);
        register(&mut e);
        e.set_max_string_size(1 << 20);
        e.set_max_array_size(100_000);
        e
    }

    fn eval(src: &str) -> Result<Dynamic, String> {
        engine().eval::<Dynamic>(src).map_err(|e| e.to_string())
    }

    #[test]
    fn guarded_functions_give_the_same_results() {
        let cases = [
            (
                r#"let s = "hello, world"; s.replace("l", "LL"); s"#,
                "heLLLLo, worLLd",
            ),
            (r#"let s = "abc"; s.replace("", "-"); s"#, "-a-b-c-"),
            (r#"let s = "abc"; s.replace('b', "xy"); s"#, "axyc"),
            (r#"let s = "abc"; s.replace("b", 'z'); s"#, "azc"),
            (r#"let s = "abc"; s.replace('a', 'é'); s"#, "ébc"),
            (r#"let s = "ab"; s.pad(5, "xy"); s"#, "abxyx"),
            (r#"let s = "ab"; s.pad(4, '!'); s"#, "ab!!"),
            (r#"let s = "abcd"; s.pad(2, '!'); s"#, "abcd"),
            (r#""a,b,,c".split(",").len"#, "4"),
            (r#""a,b,c".split(',', 2)"#, r#"["a", "b,c"]"#),
            (r#""a,b,c".split_rev(",")"#, r#"["c", "b", "a"]"#),
            (r#""a,b,c".split_rev(',', 2)"#, r#"["c", "a,b"]"#),
            (r#"" a  b ".split()"#, r#"["a", "b"]"#),
            (r#""ab".split("")"#, r#"["", "a", "b", ""]"#),
            (r#""hé".to_chars()"#, "['h', 'é']"),
            ("blob(3, 0x41).to_array()", "[65, 65, 65]"),
            ("let a = [1]; a.pad(3, 0); a", "[1, 0, 0]"),
            ("let b = blob(1); b.pad(3, 7); b.len", "3"),
            (r#"parse_json("{\"a\": [1, 2]}").a[1]"#, "2"),
        ];
        for (src, want) in cases {
            let got = eval(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let shown = if got.is_string() {
                got.into_string().unwrap()
            } else {
                format!("{got:?}")
            };
            assert_eq!(shown, want, "{src}");
        }
    }

    #[test]
    fn values_are_written_as_rhai_writes_them() {
        let mut plain = Engine::new_raw();
        use rhai::packages::{Package, StandardPackage};
        StandardPackage::new().register_into_engine(&mut plain);
        for src in [
            r#"[1, "a\n", 'c', 2.5, (), true, [], #{}, blob(2), Fn("f"), -7]"#,
            r#"#{a: [1, #{"b c": 'd'}], e: "\x1b[31m"}"#,
            r#"let a = [1, "x"]; `${a} and ${#{k: a}}`"#,
            r#"let a = [1, 'x']; "" + a + [2] + #{k: 'v'}"#,
            r#"let a = [1, "y"]; a.to_debug() + #{k: a}.to_json()"#,
            r#"let s = ""; s += [[1, ["z"]]]; s"#,
        ] {
            let want = plain.eval::<Dynamic>(src).unwrap().to_string();
            let got = eval(src).unwrap().to_string();
            assert_eq!(got, want, "{src}");
        }
    }

    #[test]
    fn amplifying_calls_are_refused_before_they_allocate() {
        // Each of these would ask for gigabytes or more; each is refused at once.
        for src in [
            // The script from the report: a million characters, each replaced by all of them.
            r#"let s = ""; s.pad(1000000, "x"); s.replace("x", s)"#,
            r#"let p = "y"; p.pad(900000, "y"); let s = "xx"; s.replace("", p)"#,
            r#"let s = "a"; s.pad(1000000, "😀")"#,
            r#"let s = ""; s.pad(1000000, "a"); s.split("")"#,
            r#"let s = ""; s.pad(1000000, "a"); s.to_chars()"#,
            r#"let s = ""; s.pad(1000000, "a,"); s.split(',')"#,
            "blob(1000000000000)",
            "let a = []; a.pad(1000000000000, 1)",
        ] {
            let e = eval(src).expect_err(src);
            assert!(
                e.contains("Length of string") || e.contains("Size of array"),
                "{src}: {e}"
            );
        }
    }

    #[test]
    fn the_budget_refuses_what_the_limits_allow() {
        let b = budget::Budget::new(8 << 20);
        let _s = b.enter();
        let mut e = engine();
        e.set_max_string_size(0);
        e.set_max_array_size(0);
        let err = e
            .eval::<Dynamic>(r#"let s = "x"; s.pad(4000, "y"); s.replace("y", s)"#)
            .unwrap_err();
        assert!(matches!(*err, EvalAltResult::ErrorTerminated(..)), "{err}");
        let err = e.eval::<Dynamic>("blob(100000000)").unwrap_err();
        assert!(matches!(*err, EvalAltResult::ErrorTerminated(..)), "{err}");
        // An array copied into each of a hundred thousand elements: 10^10 values.
        let err = e
            .eval::<Dynamic>("let b = []; b.pad(100000, 0); let a = []; a.pad(100000, b)")
            .unwrap_err();
        assert!(matches!(*err, EvalAltResult::ErrorTerminated(..)), "{err}");
        assert!(b.peak() < 8 << 20, "{}", b.peak());
        assert_eq!(replaced_len("aXbX", "X", 3), 8);
        assert_eq!(replaced_len("ab", "", 1), 5);
    }
}
