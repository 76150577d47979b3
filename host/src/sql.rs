//! SQL names that come from configuration: validated, then quoted wherever
//! they are put into a statement. Shared by every database the library and
//! the server talk to (Postgres, SQLite).

use std::fmt;

/// A name that is not a plain SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a plain SQL identifier (letters, digits, _; optionally schema.table)")]
pub struct InvalidIdentifier(pub String);

/// A validated SQL identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes),
/// optionally schema-qualified (`schema.table`). Displayed double-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    parts: Vec<String>,
}

impl Identifier {
    /// Validate `name`.
    pub fn parse(name: &str) -> Result<Identifier, InvalidIdentifier> {
        let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
        let ok = parts.len() <= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 63
                    && p.bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if !ok {
            return Err(InvalidIdentifier(name.to_owned()));
        }
        Ok(Identifier { parts })
    }

    /// Validate an identifier as [`Identifier`] displays it (each part in
    /// double quotes), or unquoted: what nscache wrote into a table of its
    /// own, read back and checked again before it goes into SQL.
    pub fn parse_quoted(text: &str) -> Result<Identifier, InvalidIdentifier> {
        let unquoted: Option<Vec<&str>> = text
            .split('.')
            .map(|part| {
                part.strip_prefix('"')
                    .and_then(|p| p.strip_suffix('"'))
                    .or(Some(part))
            })
            .collect();
        match unquoted {
            Some(parts) => {
                Identifier::parse(&parts.join(".")).map_err(|_| InvalidIdentifier(text.to_owned()))
            }
            None => Err(InvalidIdentifier(text.to_owned())),
        }
    }

    /// The last part (the table or column name itself), unquoted.
    pub fn name(&self) -> &str {
        self.parts.last().expect("at least one part")
    }

    /// The schema part, if qualified.
    pub fn schema(&self) -> Option<&str> {
        (self.parts.len() == 2).then(|| self.parts[0].as_str())
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "\"{p}\"")?;
        }
        Ok(())
    }
}

/// Where users' `cache_enabled` flags live: nscache's own table by default,
/// or an existing application table (the reference's `core_userprofile` with
/// `user_id`), to which the server's `migrate` adds the column and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTable {
    /// The table.
    pub table: Identifier,
    /// The column holding the user id (text or integer).
    pub user_column: Identifier,
    /// The boolean flag column.
    pub flag_column: Identifier,
    /// True for nscache's own table, where nscache creates a row per account;
    /// false for an application's table, whose rows the application owns.
    pub owned: bool,
}

impl Default for ProfileTable {
    fn default() -> Self {
        ProfileTable {
            table: Identifier::parse("nscache_user_profiles").expect("valid"),
            user_column: Identifier::parse("user_id").expect("valid"),
            flag_column: Identifier::parse("cache_enabled").expect("valid"),
            owned: true,
        }
    }
}

impl ProfileTable {
    /// An application's existing profile table, validated (nscache adds the
    /// flag column and its index, and only updates rows).
    pub fn existing(
        table: &str,
        user_column: &str,
        flag_column: &str,
    ) -> Result<ProfileTable, InvalidIdentifier> {
        Ok(ProfileTable {
            table: Identifier::parse(table)?,
            user_column: Identifier::parse(user_column)?,
            flag_column: Identifier::parse(flag_column)?,
            owned: false,
        })
    }

    /// The name of the flag's index.
    pub fn index_name(&self) -> Identifier {
        let name: String = format!("{}_{}_idx", self.table.name(), self.flag_column.name())
            .chars()
            .take(63)
            .collect();
        Identifier::parse(&name).expect("built from identifiers")
    }

    /// The migration's name, recorded once applied (one per profile table).
    pub fn migration_name(&self) -> String {
        format!(
            "0002_cache_enabled:{}.{}",
            self.table.name(),
            self.flag_column.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_and_quoted() {
        assert_eq!(
            Identifier::parse("core_userprofile").unwrap().to_string(),
            "\"core_userprofile\""
        );
        assert_eq!(
            Identifier::parse("app.core_userprofile")
                .unwrap()
                .to_string(),
            "\"app\".\"core_userprofile\""
        );
        for bad in ["", "1abc", "a-b", "a;drop table x", "a.b.c", "\"x\"", "a b"] {
            assert!(Identifier::parse(bad).is_err(), "{bad}");
        }
        let quoted = Identifier::parse("app.invoices").unwrap().to_string();
        assert_eq!(
            Identifier::parse_quoted(&quoted).unwrap().to_string(),
            quoted
        );
        for bad in [
            "\"x\"; DROP TABLE y; --",
            "\"a\".\"b\".\"c\"",
            "\"a b\"",
            "\"\"",
        ] {
            assert!(Identifier::parse_quoted(bad).is_err(), "{bad}");
        }
    }
}
