//! Passwords: Argon2id hashes in PHC strings (parameters and salt inside, so they can be raised
//! later and old hashes still verify), and the policy a new password must meet.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted (Argon2 takes any length; this bounds the work per request).
pub const MAX_LENGTH: usize = 256;

/// The hasher: Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane — OWASP's minimum).
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes `password` with a fresh salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashes any password within MAX_LENGTH")
        .to_string()
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so an unknown login takes as long as a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("pintu-office dummy password"));
    let _ = verify(password, phc);
}

/// Why a new password is refused (`None`: acceptable).
pub fn policy_problem(password: &str, username: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Some(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Some(format!("a password has at most {MAX_LENGTH} bytes"));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) && !username.is_empty() {
        return Some("a password must not contain the user name".into());
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Some("a password must not be one character repeated".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("x", "not a phc string"));
        assert_ne!(phc, hash("correct horse battery"), "a fresh salt each time");
    }

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert!(policy_problem("short", "budi").unwrap().contains("12"));
        assert!(policy_problem("budi-password-1", "budi")
            .unwrap()
            .contains("user name"));
        assert!(policy_problem("aaaaaaaaaaaaaa", "x")
            .unwrap()
            .contains("repeated"));
        assert_eq!(policy_problem("kopi tubruk pagi", "budi"), None);
    }
}
