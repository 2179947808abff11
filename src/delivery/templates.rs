//! The text of a code message, in the language of the recipient's country.

use crate::domain::{Code, PhoneNumber};

/// `{service}` and `{code}` are replaced. Languages by country calling code; English otherwise.
fn template(country_code: u16) -> &'static str {
    match country_code {
        7 | 375 => "Ваш код для {service}: {code}. Никому его не сообщайте.",
        380 => "Ваш код для {service}: {code}. Нікому його не повідомляйте.",
        49 | 43 | 41 => "Ihr Code für {service}: {code}. Geben Sie ihn niemandem weiter.",
        33 | 32 => "Votre code pour {service} : {code}. Ne le communiquez à personne.",
        34 | 52 | 54 | 57 | 56 | 51 | 58 => "Tu código para {service}: {code}. No lo compartas con nadie.",
        55 | 351 => "Seu código para {service}: {code}. Não o compartilhe com ninguém.",
        39 => "Il tuo codice per {service}: {code}. Non condividerlo con nessuno.",
        90 => "{service} kodunuz: {code}. Bu kodu kimseyle paylaşmayın.",
        62 => "Kode Anda untuk {service}: {code}. Jangan berikan kepada siapa pun.",
        _ => "Your code for {service}: {code}. Do not give it to anyone.",
    }
}

pub fn render(phone: &PhoneNumber, service: &str, code: &Code) -> String {
    template(phone.country_code()).replace("{service}", service).replace("{code}", code.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localized_by_country() {
        let code = Code::parse("123456").unwrap();
        let en = render(&PhoneNumber::parse("15551234567").unwrap(), "Acme", &code);
        assert_eq!(en, "Your code for Acme: 123456. Do not give it to anyone.");
        let de = render(&PhoneNumber::parse("4915112345678").unwrap(), "Acme", &code);
        assert!(de.starts_with("Ihr Code für Acme: 123456"));
    }
}
