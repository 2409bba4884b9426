//! Mail: the settings, the messages (plain text and HTML per kind, values HTML-escaped,
//! templates an operator may override) and the transports (SMTP through lettre, or the log
//! for development). Messages are never sent from a request: they go through the outbox
//! (outbox.rs).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_core::{ConfigError, Source};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// How long one SMTP exchange may take before it counts as a failed attempt.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes (`LATCHKEY_MAIL_TRANSPORT`).
#[derive(Debug, Clone)]
pub(crate) enum TransportKind {
    Smtp(SmtpTarget),
    /// Each message, links included, written to the log at info level: development only.
    Log,
}

/// `LATCHKEY_SMTP_URL`, parsed (the credentials stay secret).
#[derive(Clone)]
pub(crate) struct SmtpTarget {
    host: String,
    port: u16,
    tls: SmtpTls,
    user: Option<String>,
    password: Option<SecretString>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SmtpTls {
    /// `smtp://`: plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=none`: a plain connection, only to a relay on the loopback interface.
    None,
}

/// The mail settings.
#[derive(Debug, Clone)]
pub(crate) struct MailConfig {
    /// `None`: no transport, so the email endpoints answer as Better-Auth without a send
    /// callback.
    pub(crate) transport: Option<TransportKind>,
    pub(crate) from: String,
    pub(crate) app_name: String,
    pub(crate) templates: Templates,
}

impl MailConfig {
    pub(crate) fn load(src: &Source, base_url: &url::Url) -> Result<Self, ConfigError> {
        let transport = match src
            .get("LATCHKEY_MAIL_TRANSPORT")?
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("none") => None,
            Some("log") => Some(TransportKind::Log),
            Some("smtp") => {
                let url = src.secret("LATCHKEY_SMTP_URL")?.ok_or_else(|| {
                    ConfigError::new(
                        "LATCHKEY_SMTP_URL",
                        "is required with LATCHKEY_MAIL_TRANSPORT=smtp \
                         (smtp://[user:pass@]host[:port] or smtps://...)",
                    )
                })?;
                Some(TransportKind::Smtp(parse_smtp_url(&url)?))
            }
            Some(other) => {
                return Err(ConfigError::new(
                    "LATCHKEY_MAIL_TRANSPORT",
                    format!("invalid value {other:?}: expected smtp or log"),
                ))
            }
        };
        let app_name = src
            .get("LATCHKEY_APP_NAME")?
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "latchkey".to_string());
        let host = base_url.host_str().unwrap_or("localhost");
        let from = src
            .get("LATCHKEY_MAIL_FROM")?
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| format!("{app_name} <no-reply@{host}>"));
        if from.parse::<Mailbox>().is_err() {
            return Err(ConfigError::new(
                "LATCHKEY_MAIL_FROM",
                format!("invalid address {from:?}: expected name <user@example.com> or user@example.com"),
            ));
        }
        if transport.is_some()
            && src.get("LATCHKEY_MAIL_FROM")?.is_none()
            && host.parse::<IpAddr>().is_ok()
        {
            tracing::warn!(
                "LATCHKEY_MAIL_FROM is not set: mail is sent from {from}, which mail servers \
                 will likely refuse"
            );
        }
        let templates = match src.get("LATCHKEY_MAIL_TEMPLATES")? {
            None => Templates::default(),
            Some(dir) => Templates::load(Path::new(dir.trim()))
                .map_err(|e| ConfigError::new("LATCHKEY_MAIL_TEMPLATES", e))?,
        };
        Ok(MailConfig {
            transport,
            from,
            app_name,
            templates,
        })
    }
}

fn parse_smtp_url(raw: &SecretString) -> Result<SmtpTarget, ConfigError> {
    const NAME: &str = "LATCHKEY_SMTP_URL";
    // The value holds a password: errors never quote it.
    let url = url::Url::parse(raw.expose_secret().trim()).map_err(|_| {
        ConfigError::new(NAME, "not a URL: expected smtp://[user:pass@]host[:port]")
    })?;
    let implicit = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        _ => {
            return Err(ConfigError::new(
                NAME,
                "the scheme must be smtp (STARTTLS) or smtps (implicit TLS)",
            ))
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ConfigError::new(NAME, "has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut tls = if implicit {
        SmtpTls::Implicit
    } else {
        SmtpTls::StartTls
    };
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") if !implicit => tls = SmtpTls::None,
            ("tls", "required" | "starttls") if !implicit => {}
            _ => {
                return Err(ConfigError::new(
                    NAME,
                    format!("unknown parameter {key:?}: only tls=none (loopback relays) is taken"),
                ))
            }
        }
    }
    if tls == SmtpTls::None && !is_loopback(&host) {
        return Err(ConfigError::new(
            NAME,
            format!(
                "tls=none sends passwords and reset links in the clear: allowed only for a \
                 relay on the loopback interface, not {host}"
            ),
        ));
    }
    let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ConfigError::new(NAME, "user name or password is not valid UTF-8"))
    };
    let user = (!url.username().is_empty())
        .then(|| decode(url.username()))
        .transpose()?;
    let password = url
        .password()
        .map(decode)
        .transpose()?
        .map(SecretString::from);
    Ok(SmtpTarget {
        host,
        port,
        tls,
        user,
        password,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What a message is for; the outbox's `kind` column and the template's file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    VerifyEmail,
    ResetPassword,
    /// To the old address: agree to a change to `{{new_email}}`.
    ChangeEmail,
    /// The link that deletes the account.
    DeleteAccount,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::VerifyEmail => "verify-email",
            Kind::ResetPassword => "reset-password",
            Kind::ChangeEmail => "change-email",
            Kind::DeleteAccount => "delete-account",
        }
    }

    const ALL: [Kind; 4] = [
        Kind::VerifyEmail,
        Kind::ResetPassword,
        Kind::ChangeEmail,
        Kind::DeleteAccount,
    ];
}

/// One template: subject, plain text and HTML, with `{{app_name}}`, `{{name}}`, `{{email}}`,
/// `{{url}}` and (filled in change-email mails only) `{{new_email}}` in them.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    subject: String,
    text: String,
    html: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Templates {
    verify_email: Template,
    reset_password: Template,
    change_email: Template,
    delete_account: Template,
}

const PLACEHOLDERS: [&str; 5] = ["app_name", "name", "email", "url", "new_email"];

fn html_page(heading: &str, lead: &str, button: &str, tail: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{heading}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;padding:32px 0"><tr><td align="center">
<table role="presentation" width="480" cellpadding="0" cellspacing="0" style="max-width:480px;background:#ffffff;border-radius:8px;padding:32px">
<tr><td style="font-size:14px;color:#57606a;padding-bottom:8px">{{{{app_name}}}}</td></tr>
<tr><td style="font-size:22px;font-weight:600;padding-bottom:16px">{heading}</td></tr>
<tr><td style="font-size:15px;line-height:1.5;padding-bottom:24px">{lead}</td></tr>
<tr><td style="padding-bottom:24px"><a href="{{{{url}}}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 20px;border-radius:6px">{button}</a></td></tr>
<tr><td style="font-size:13px;line-height:1.5;color:#57606a;padding-bottom:8px">If the button does not work, open this link:<br><a href="{{{{url}}}}" style="color:#1f6feb;word-break:break-all">{{{{url}}}}</a></td></tr>
<tr><td style="font-size:13px;line-height:1.5;color:#57606a">{tail}</td></tr>
</table></td></tr></table></body></html>
"#
    )
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            verify_email: Template {
                subject: "Verify your email address for {{app_name}}".into(),
                text: "Hello {{name}},\n\nplease confirm that {{email}} is your email address \
                       by opening this link:\n\n{{url}}\n\nThe link is valid for a limited time. \
                       If you did not sign up for {{app_name}}, you can ignore this message.\n"
                    .into(),
                html: html_page(
                    "Verify your email address",
                    "Hello {{name}}, please confirm that <strong>{{email}}</strong> is your email address.",
                    "Verify email address",
                    "The link is valid for a limited time. If you did not sign up for {{app_name}}, you can ignore this message.",
                ),
            },
            reset_password: Template {
                subject: "Reset your {{app_name}} password".into(),
                text: "Hello {{name}},\n\nsomeone (hopefully you) asked to reset the password of \
                       the {{app_name}} account for {{email}}. To choose a new password, open \
                       this link:\n\n{{url}}\n\nThe link is valid for a limited time and works \
                       once. If you did not ask for this, ignore this message: your password \
                       stays as it is.\n"
                    .into(),
                html: html_page(
                    "Reset your password",
                    "Hello {{name}}, someone (hopefully you) asked to reset the password of the account for <strong>{{email}}</strong>.",
                    "Choose a new password",
                    "The link is valid for a limited time and works once. If you did not ask for this, ignore this message: your password stays as it is.",
                ),
            },
            change_email: Template {
                subject: "Confirm the new email address of your {{app_name}} account".into(),
                text: "Hello {{name}},\n\nsomeone signed in to the {{app_name}} account for \
                       {{email}} asked to change its address to {{new_email}}. If that was you, \
                       open this link to agree; a second link then goes to {{new_email}}, and \
                       the address changes once that one is opened:\n\n{{url}}\n\nThe link \
                       is valid for a limited time. If you did not ask for this, ignore this \
                       message and change your password: your address stays as it is.\n"
                    .into(),
                html: html_page(
                    "Confirm your new email address",
                    "Hello {{name}}, someone signed in to the account for <strong>{{email}}</strong> asked to change its address to <strong>{{new_email}}</strong>. If that was you, agree below; a second link then goes to the new address, and the change happens once that one is opened.",
                    "Agree to the change",
                    "The link is valid for a limited time. If you did not ask for this, ignore this message and change your password: your address stays as it is.",
                ),
            },
            delete_account: Template {
                subject: "Confirm the deletion of your {{app_name}} account".into(),
                text: "Hello {{name}},\n\nsomeone signed in to the {{app_name}} account for \
                       {{email}} asked to delete it. Opening this link, signed in, deletes the \
                       account and everything in it for good:\n\n{{url}}\n\nThe link is \
                       valid for a limited time and works once. If you did not ask for this, \
                       ignore this message and change your password: nothing is deleted.\n"
                    .into(),
                html: html_page(
                    "Delete your account",
                    "Hello {{name}}, someone signed in to the account for <strong>{{email}}</strong> asked to delete it. Opening the link below while signed in deletes the account for good.",
                    "Delete my account",
                    "The link is valid for a limited time and works once. If you did not ask for this, ignore this message and change your password: nothing is deleted.",
                ),
            },
        }
    }
}

impl Templates {
    /// Overrides from a directory: `<kind>.subject`, `<kind>.txt`, `<kind>.html` (each
    /// optional; kinds `verify-email`, `reset-password`, `change-email`, `delete-account`). Unknown placeholders are refused
    /// at start-up rather than sent.
    fn load(dir: &Path) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        let mut templates = Templates::default();
        for kind in Kind::ALL {
            let t = templates.get_mut(kind);
            for (ext, slot) in [
                ("subject", &mut t.subject),
                ("txt", &mut t.text),
                ("html", &mut t.html),
            ] {
                let path: PathBuf = dir.join(format!("{}.{ext}", kind.name()));
                if !path.exists() {
                    continue;
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                check_placeholders(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                *slot = if ext == "subject" {
                    text.trim().to_string()
                } else {
                    text
                };
            }
        }
        Ok(templates)
    }

    fn get(&self, kind: Kind) -> &Template {
        match kind {
            Kind::VerifyEmail => &self.verify_email,
            Kind::ResetPassword => &self.reset_password,
            Kind::ChangeEmail => &self.change_email,
            Kind::DeleteAccount => &self.delete_account,
        }
    }

    fn get_mut(&mut self, kind: Kind) -> &mut Template {
        match kind {
            Kind::VerifyEmail => &mut self.verify_email,
            Kind::ResetPassword => &mut self.reset_password,
            Kind::ChangeEmail => &mut self.change_email,
            Kind::DeleteAccount => &mut self.delete_account,
        }
    }
}

fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| "unclosed {{".to_string())?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// `{{name}}` replaced by `values`, each passed through `escape`.
fn fill(template: &str, values: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(&escape(v)),
            None => out.push_str(&rest[start..start + 4 + end]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A message ready for the outbox.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) kind: Kind,
    pub(crate) recipient: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

impl MailConfig {
    /// The message of `kind` for `name <email>` with its action `url`.
    pub(crate) fn render(&self, kind: Kind, name: &str, email: &str, url: &str) -> Rendered {
        self.render_change(kind, name, email, url, "")
    }

    /// [`MailConfig::render`] with `{{new_email}}` filled: the mail about a change of address.
    pub(crate) fn render_change(
        &self,
        kind: Kind,
        name: &str,
        email: &str,
        url: &str,
        new_email: &str,
    ) -> Rendered {
        let t = self.templates.get(kind);
        let values = [
            ("app_name", self.app_name.as_str()),
            ("name", name),
            ("email", email),
            ("url", url),
            ("new_email", new_email),
        ];
        // Subjects are a header: no line breaks from a user's name.
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        Rendered {
            kind,
            recipient: email.to_string(),
            subject: one_line(&fill(&t.subject, &values, |s| s.to_string())),
            text: fill(&t.text, &values, |s| s.to_string()),
            html: fill(&t.html, &values, html_escape),
        }
    }
}

/// A message as the outbox hands it to a transport.
pub(crate) struct Outgoing<'a> {
    pub(crate) id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) recipient: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) text: &'a str,
    pub(crate) html: &'a str,
}

/// A transport, built once at start-up.
pub(crate) enum Transport {
    Smtp {
        mailer: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
    Log,
}

/// Why a send failed: the message to record (no secrets: lettre's errors name the server's
/// answer, not the message).
pub(crate) struct SendError(pub(crate) String);

impl Transport {
    pub(crate) fn new(config: &MailConfig) -> Result<Option<Self>, String> {
        let Some(kind) = &config.transport else {
            return Ok(None);
        };
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("LATCHKEY_MAIL_FROM: {e}"))?;
        Ok(Some(match kind {
            TransportKind::Log => {
                tracing::warn!(
                    "LATCHKEY_MAIL_TRANSPORT=log: every message, reset links included, is \
                     written to the log; for development only"
                );
                let _ = from;
                Transport::Log
            }
            TransportKind::Smtp(target) => {
                let params = || {
                    TlsParameters::new(target.host.clone())
                        .map_err(|e| format!("SMTP TLS for {}: {e}", target.host))
                };
                let tls = match target.tls {
                    SmtpTls::StartTls => Tls::Required(params()?),
                    SmtpTls::Implicit => Tls::Wrapper(params()?),
                    SmtpTls::None => Tls::None,
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
                        .port(target.port)
                        .tls(tls)
                        .timeout(Some(SMTP_TIMEOUT));
                if let Some(user) = &target.user {
                    let password = target
                        .password
                        .as_ref()
                        .map(|p| p.expose_secret().to_string())
                        .unwrap_or_default();
                    builder = builder.credentials(Credentials::new(user.clone(), password));
                }
                Transport::Smtp {
                    mailer: Box::new(builder.build()),
                    from,
                }
            }
        }))
    }

    pub(crate) async fn send(&self, msg: &Outgoing<'_>) -> Result<(), SendError> {
        match self {
            Transport::Log => {
                tracing::info!(
                    target: "mail",
                    id = msg.id,
                    kind = msg.kind,
                    to = msg.recipient,
                    subject = msg.subject,
                    "mail (LATCHKEY_MAIL_TRANSPORT=log, not sent):\n{}",
                    msg.text
                );
                Ok(())
            }
            Transport::Smtp { mailer, from } => {
                let to: Mailbox = msg
                    .recipient
                    .parse()
                    .map_err(|e| SendError(format!("recipient address refused: {e}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(msg.subject)
                    .message_id(Some(format!("<{}@{}>", msg.id, from.email.domain())))
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_PLAIN)
                                    .body(msg.text.to_string()),
                            )
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(msg.html.to_string()),
                            ),
                    )
                    .map_err(|e| SendError(format!("message not built: {e}")))?;
                mailer
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError(latchkey_core::error_chain(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(url: &str) -> Result<SmtpTarget, ConfigError> {
        parse_smtp_url(&SecretString::from(url.to_string()))
    }

    #[test]
    fn smtp_urls() {
        let t = smtp("smtp://bob:p%40ss@mail.example.com").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("mail.example.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(t.user.as_deref(), Some("bob"));
        assert_eq!(t.password.unwrap().expose_secret(), "p@ss");
        let t = smtp("smtps://mail.example.com:2465").unwrap();
        assert_eq!((t.port, t.tls), (2465, SmtpTls::Implicit));
        let t = smtp("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(t.tls, SmtpTls::None);
        assert!(smtp("smtp://localhost:25?tls=none").is_ok());
        assert!(smtp("smtp://[::1]:25?tls=none").is_ok());
        let e = smtp("smtp://user:hunter2@mail.example.com?tls=none").unwrap_err();
        assert!(e.problem.contains("loopback"), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        assert!(smtp("http://mail.example.com").is_err());
        assert!(smtp("smtp://mail.example.com?foo=bar").is_err());
        assert!(
            !format!("{:?}", smtp("smtp://bob:hunter2@x.example").unwrap()).contains("hunter2")
        );
    }

    #[test]
    fn values_are_escaped_in_html_only() {
        let config = MailConfig {
            transport: None,
            from: "a@b.c".into(),
            app_name: "Acme & Co".into(),
            templates: Templates::default(),
        };
        let m = config.render(
            Kind::ResetPassword,
            "<script>x</script>",
            "e@example.com",
            "http://h/a?b=1&c=2",
        );
        assert!(m.html.contains("&lt;script&gt;"));
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains("http://h/a?b=1&amp;c=2"));
        assert!(m.text.contains("http://h/a?b=1&c=2"));
        assert_eq!(m.subject, "Reset your Acme & Co password");
    }

    #[test]
    fn templates_refuse_unknown_placeholders() {
        assert!(check_placeholders("{{url}} {{ name }}").is_ok());
        assert!(check_placeholders("{{token}}").is_err());
        assert!(check_placeholders("{{url").is_err());
        assert_eq!(fill("a{{x}}b", &[("x", "<>")], html_escape), "a&lt;&gt;b");
    }
}
