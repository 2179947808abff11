//! The text of a code message, in the language of the recipient's country: the templates of
//! `[templates]` in the configuration, which a tenant may override per language.

use crate::config::TemplateSettings;
use crate::domain::{Code, PhoneNumber};
use std::collections::BTreeMap;

/// The recipient's language: by country calling code, else English.
pub fn language<'a>(templates: &'a TemplateSettings, phone: &PhoneNumber) -> &'a str {
    templates.by_country.get(&phone.country_code().to_string()).map_or("en", String::as_str)
}

/// The message: the tenant's template for the language if it has one, else the server's, else
/// the server's English one. `{service}` and `{code}` are replaced.
pub fn render(
    templates: &TemplateSettings,
    tenant_templates: &BTreeMap<String, String>,
    phone: &PhoneNumber,
    service: &str,
    code: &Code,
) -> String {
    let lang = language(templates, phone);
    let template = tenant_templates
        .get(lang)
        .or_else(|| templates.text.get(lang))
        .or_else(|| tenant_templates.get("en"))
        .or_else(|| templates.text.get("en"))
        .map_or("{service}: {code}", String::as_str);
    // `{code}` last, so a service name containing "{code}" cannot show the code twice.
    template.replace("{service}", &service.replace("{code}", "")).replace("{code}", code.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn render_for(phone: &str, tenant: &BTreeMap<String, String>) -> String {
        let settings = Settings::from_toml("").unwrap();
        render(
            &settings.templates,
            tenant,
            &PhoneNumber::parse(phone).unwrap(),
            "Acme",
            &Code::parse("123456").unwrap(),
        )
    }

    #[test]
    fn localized_by_country() {
        let none = BTreeMap::new();
        assert_eq!(render_for("15551234567", &none), "Your code for Acme: 123456. Do not give it to anyone.");
        assert!(render_for("4915112345678", &none).starts_with("Ihr Code für Acme: 123456"));
        assert!(render_for("79161234567", &none).starts_with("Ваш код для Acme: 123456"));
        assert!(render_for("380501234567", &none).starts_with("Ваш код для Acme: 123456. Нікому"));
        assert!(render_for("998901234567", &none).starts_with("Acme uchun kodingiz: 123456"));
        assert!(render_for("919812345678", &none).starts_with("Acme के लिए आपका कोड: 123456"));
        assert!(render_for("966501234567", &none).contains("123456"));
        assert!(render_for("989121234567", &none).starts_with("کد شما برای Acme: 123456"));
    }

    #[test]
    fn every_required_language_is_there() {
        let settings = Settings::from_toml("").unwrap();
        for lang in ["en", "ru", "es", "pt", "de", "fr", "it", "tr", "ar", "fa", "id", "uk", "uz", "hi"] {
            let text = settings.templates.text.get(lang).unwrap_or_else(|| panic!("no {lang} template"));
            assert!(text.contains("{code}") && text.contains("{service}"), "{lang}");
        }
    }

    #[test]
    fn tenants_override_per_language() {
        let mut tenant = BTreeMap::new();
        tenant.insert("de".to_owned(), "Acme-Code: {code}".to_owned());
        assert_eq!(render_for("4915112345678", &tenant), "Acme-Code: 123456");
        assert!(
            render_for("15551234567", &tenant).starts_with("Your code for Acme"),
            "other languages keep the server's"
        );
    }

    #[test]
    fn a_service_name_cannot_smuggle_the_code_placeholder() {
        let settings = Settings::from_toml("").unwrap();
        let text = render(
            &settings.templates,
            &BTreeMap::new(),
            &PhoneNumber::parse("15551234567").unwrap(),
            "{code}",
            &Code::parse("123456").unwrap(),
        );
        assert_eq!(text.matches("123456").count(), 1, "{text}");
    }
}
