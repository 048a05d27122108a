//! A case's data as CEL values, converted by the schema: a `double` field holds a double even
//! when the JSON says `85000`, a `date` is checked to be `YYYY-MM-DD`, and data that does not
//! fit the schema is refused here, naming the field but never its value (it may be personal).

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map, Value};
use dsl::model::{FieldType, SchemaField};

/// Applicant data that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("`{path}` is not declared in the schema")]
    Unknown { path: String },
    #[error("`{path}` must be {expected}")]
    Mismatch { path: String, expected: String },
    #[error("`{path}` is too deeply nested")]
    TooDeep { path: String },
}

const MAX_DEPTH: usize = 32;

/// Converts a record (the value of one schema) to a CEL map. Absent fields stay absent: a
/// rule that reads one fails with "missing", not with a wrong value.
pub fn record(path: &str, value: &serde_json::Value, fields: &[SchemaField]) -> Result<Value, FactError> {
    convert(path, value, &FieldType::Record(fields.to_vec()), 0)
}

fn convert(path: &str, value: &serde_json::Value, ty: &FieldType, depth: usize) -> Result<Value, FactError> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Err(FactError::TooDeep { path: path.to_string() });
    }
    let mismatch = |expected: &str| FactError::Mismatch { path: path.to_string(), expected: expected.to_string() };
    Ok(match (ty, value) {
        (FieldType::String, J::String(s)) => Value::String(Arc::new(s.clone())),
        (FieldType::Int, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(|| mismatch("a whole number"))?),
        (FieldType::Double, J::Number(n)) => Value::Float(n.as_f64().ok_or_else(|| mismatch("a number"))?),
        (FieldType::Bool, J::Bool(b)) => Value::Bool(*b),
        (FieldType::Date, J::String(s)) => {
            calendar::parse_date(s).map_err(|_| mismatch("a date, YYYY-MM-DD"))?;
            Value::String(Arc::new(s.trim().to_string()))
        }
        (FieldType::List(element), J::Array(items)) => Value::List(Arc::new(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(&format!("{path}[{i}]"), item, element, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        (FieldType::Record(fields), J::Object(object)) => {
            let mut map: HashMap<Key, Value> = HashMap::with_capacity(object.len());
            for (name, item) in object {
                let field_path = format!("{path}.{name}");
                let field =
                    fields.iter().find(|f| &f.name == name).ok_or(FactError::Unknown { path: field_path.clone() })?;
                map.insert(Key::String(Arc::new(name.clone())), convert(&field_path, item, &field.ty, depth + 1)?);
            }
            Value::Map(Map { map: Arc::new(map) })
        }
        (FieldType::String, _) => return Err(mismatch("text")),
        (FieldType::Int, _) => return Err(mismatch("a whole number")),
        (FieldType::Double, _) => return Err(mismatch("a number")),
        (FieldType::Bool, _) => return Err(mismatch("true or false")),
        (FieldType::Date, _) => return Err(mismatch("a date, YYYY-MM-DD")),
        (FieldType::List(_), _) => return Err(mismatch("a list")),
        (FieldType::Record(_), _) => return Err(mismatch("a record")),
    })
}

pub fn strings(items: &[String]) -> Value {
    Value::List(Arc::new(items.iter().map(|s| Value::String(Arc::new(s.clone()))).collect()))
}
