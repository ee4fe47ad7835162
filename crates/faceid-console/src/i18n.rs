//! The console's words in English, French and Arabic. English text is the key (as gettext
//! does): `t(language, "Subjects")`. Placeholders in braces (`{n}`) are filled by [`fill`].
//!
//! egui shapes each Arabic word right to left but lays a line's words out left to right, so
//! a phrase would read backwards. [`visual`] puts right-to-left runs (found by the Unicode
//! bidirectional algorithm) in the order egui should draw them; [`t`] and [`fill`] apply it,
//! and so must any other text that may hold Arabic (names).

use std::borrow::Cow;
use std::sync::OnceLock;

use unicode_bidi::{BidiClass, Level, ParagraphBidiInfo, bidi_class};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
    /// Arabic.
    Ar,
}

impl Language {
    /// Every language, in menu order.
    pub const ALL: [Language; 3] = [Language::En, Language::Fr, Language::Ar];

    /// `en`, `fr` or `ar`.
    pub fn parse(code: &str) -> Option<Language> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            "ar" => Some(Language::Ar),
            _ => None,
        }
    }

    /// The language's own name, for the menu.
    pub fn name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Fr => "Français",
            Language::Ar => "العربية",
        }
    }
}

/// `english` in `language`, ready to draw; English itself when a translation is missing.
pub fn t(language: Language, english: &'static str) -> &'static str {
    let Some(row) = WORDS.iter().position(|row| row[0] == english) else {
        return english;
    };
    match language {
        Language::En => english,
        Language::Fr => WORDS[row][1],
        Language::Ar => {
            // Arabic in drawing order, computed once.
            static ARABIC: OnceLock<Vec<String>> = OnceLock::new();
            ARABIC.get_or_init(|| {
                // Placeholders are kept whole as left-to-right runs: their braces are
                // neutral and would otherwise be reordered apart.
                WORDS
                    .iter()
                    .map(|row| {
                        let protected = row[2].replace('{', "\u{E000}").replace('}', "\u{E001}");
                        visual(&protected, true)
                            .replace('\u{E000}', "{")
                            .replace('\u{E001}', "}")
                    })
                    .collect()
            })[row]
                .as_str()
        }
    }
}

/// `template` (from [`t`]) with each `{name}` replaced by its value, itself put in drawing
/// order (a name in Arabic inside an English line).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), &visual(value, false))
        })
}

/// `text` in the order egui should draw it, left to right: within each right-to-left run,
/// letters of a word stay in reading order (egui shapes them) and the words, spaces and
/// signs between them are reversed, brackets mirrored. `rtl` sets the paragraph direction
/// (Arabic screens); without right-to-left letters the text is returned as is.
pub fn visual(text: &str, rtl: bool) -> Cow<'_, str> {
    if !text.chars().any(is_rtl_letter) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| visual_line(line, rtl))
        .collect();
    Cow::Owned(lines.join("\n"))
}

fn is_rtl_letter(c: char) -> bool {
    matches!(bidi_class(c), BidiClass::R | BidiClass::AL)
}

fn visual_line(line: &str, rtl: bool) -> String {
    if line.is_empty() {
        return String::new();
    }
    let level = if rtl { Level::rtl() } else { Level::ltr() };
    let info = ParagraphBidiInfo::new(line, Some(level));
    let (levels, runs) = info.visual_runs(0..line.len());
    runs.into_iter()
        .map(|run| {
            let part = &line[run.clone()];
            if levels[run.start].is_rtl() {
                reversed(part)
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// A right-to-left run in drawing order: words (letters and their marks) kept whole, every
/// other character on its own, all reversed.
fn reversed(run: &str) -> String {
    let mut pieces: Vec<String> = Vec::new();
    let mut in_word = false;
    for c in run.chars() {
        let letter = is_rtl_letter(c) || (in_word && bidi_class(c) == BidiClass::NSM);
        match pieces.last_mut() {
            Some(word) if letter && in_word => word.push(c),
            _ => pieces.push(mirrored(c).to_string()),
        }
        in_word = letter;
    }
    pieces.reverse();
    pieces.concat()
}

fn mirrored(c: char) -> char {
    match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '«' => '»',
        '»' => '«',
        '<' => '>',
        '>' => '<',
        c => c,
    }
}

/// English, French, Arabic.
const WORDS: &[[&str; 3]] = &[
    // header
    ["Subjects", "Personnes", "الأشخاص"],
    ["Audit", "Audit", "التدقيق"],
    ["Live view", "Caméra en direct", "العرض المباشر"],
    ["Calibration", "Calibrage", "المعايرة"],
    ["Health", "État", "الحالة"],
    ["Light theme", "Thème clair", "المظهر الفاتح"],
    ["Dark theme", "Thème sombre", "المظهر الداكن"],
    ["Language", "Langue", "اللغة"],
    [
        "Connecting to {server}…",
        "Connexion à {server}…",
        "جارٍ الاتصال بـ {server}…",
    ],
    [
        "Connected to {server}",
        "Connecté à {server}",
        "متصل بـ {server}",
    ],
    [
        "Connection lost to {server}: {error}. Retrying in {secs} s; the data below may be out of date.",
        "Connexion perdue avec {server} : {error}. Nouvel essai dans {secs} s ; les données ci-dessous peuvent être périmées.",
        "انقطع الاتصال بـ {server}: {error}. إعادة المحاولة خلال {secs} ث؛ قد تكون البيانات أدناه قديمة.",
    ],
    // subjects
    ["Search", "Rechercher", "بحث"],
    [
        "id or name (Ctrl+F)",
        "identifiant ou nom (Ctrl+F)",
        "المعرّف أو الاسم (Ctrl+F)",
    ],
    ["Reload", "Recharger", "إعادة التحميل"],
    ["loading…", "chargement…", "جارٍ التحميل…"],
    ["{n} subjects", "{n} personnes", "{n} شخص"],
    [
        "{n} subjects matching “{search}”",
        "{n} personnes pour « {search} »",
        "{n} شخص يطابق «{search}»",
    ],
    ["unknown source", "source inconnue", "مصدر غير معروف"],
    ["{n} template(s)", "{n} modèle(s)", "{n} قالب"],
    ["enrolled {date}", "inscrit le {date}", "سُجّل في {date}"],
    ["no image", "pas d'image", "لا صورة"],
    [
        "Select a subject.",
        "Choisissez une personne.",
        "اختر شخصًا.",
    ],
    ["Id", "Identifiant", "المعرّف"],
    ["Source", "Source", "المصدر"],
    ["unknown", "inconnue", "غير معروف"],
    ["Enrolled", "Inscription", "التسجيل"],
    ["Changed", "Modifié", "آخر تعديل"],
    ["Templates", "Modèles", "القوالب"],
    ["Image kept", "Image conservée", "الصورة محفوظة"],
    ["yes (encrypted)", "oui (chiffrée)", "نعم (مشفّرة)"],
    ["no", "non", "لا"],
    ["Erase subject…", "Effacer la personne…", "حذف الشخص…"],
    ["Erase {name}?", "Effacer {name} ?", "حذف {name}؟"],
    [
        "Subject {id} loses every template, the retained image and its index entries. This cannot be undone; the erasure is written to the audit log.",
        "La personne {id} perd tous ses modèles, l'image conservée et ses entrées d'index. C'est irréversible ; l'effacement est inscrit au journal d'audit.",
        "سيفقد الشخص {id} كل قوالبه والصورة المحفوظة ومدخلات الفهرس. لا يمكن التراجع عن ذلك، ويُسجَّل الحذف في سجل التدقيق.",
    ],
    ["Erase", "Effacer", "حذف"],
    ["Cancel", "Annuler", "إلغاء"],
    [
        "{id} erased: templates, image and index entries",
        "{id} effacé : modèles, image et entrées d'index",
        "تم حذف {id}: القوالب والصورة ومدخلات الفهرس",
    ],
    [
        "{id} was not erased: {error}",
        "{id} n'a pas été effacé : {error}",
        "لم يُحذف {id}: {error}",
    ],
    // audit
    [
        "Reading the audit log…",
        "Lecture du journal d'audit…",
        "جارٍ قراءة سجل التدقيق…",
    ],
    [
        "Hash chain verified: {n} events, each linked to the one before",
        "Chaîne de hachage vérifiée : {n} événements, chacun lié au précédent",
        "تم التحقق من سلسلة التجزئة: {n} حدث، كل منها مرتبط بسابقه",
    ],
    [
        "Hash chain BROKEN at event {seq}: the log was altered after it was written",
        "Chaîne de hachage ROMPUE à l'événement {seq} : le journal a été modifié après écriture",
        "سلسلة التجزئة مكسورة عند الحدث {seq}: عُدّل السجل بعد كتابته",
    ],
    ["Period", "Période", "الفترة"],
    ["All time", "Tout", "كل الفترات"],
    ["Last hour", "Dernière heure", "آخر ساعة"],
    ["Last 24 hours", "Dernières 24 heures", "آخر 24 ساعة"],
    ["Last 7 days", "7 derniers jours", "آخر 7 أيام"],
    ["Subject", "Personne", "الشخص"],
    ["exact id", "identifiant exact", "المعرّف بالضبط"],
    ["Decision", "Décision", "القرار"],
    ["Kiosk", "Borne", "الكشك"],
    ["device or key", "borne ou clé", "الجهاز أو المفتاح"],
    [
        "{n} events shown, newest first",
        "{n} événements affichés, les plus récents d'abord",
        "{n} حدث معروض، الأحدث أولًا",
    ],
    ["Export CSV", "Exporter en CSV", "تصدير CSV"],
    [
        "exported to {path}",
        "exporté vers {path}",
        "صُدّر إلى {path}",
    ],
    ["time", "heure", "الوقت"],
    ["action", "action", "الإجراء"],
    ["subject", "personne", "الشخص"],
    ["outcome", "résultat", "النتيجة"],
    ["actor", "acteur", "الفاعل"],
    // live view
    ["Camera", "Caméra", "الكاميرا"],
    ["Start", "Démarrer", "تشغيل"],
    ["Stop", "Arrêter", "إيقاف"],
    [
        "{fps} frames/s · answer in {ms} ms · frame {n}",
        "{fps} images/s · réponse en {ms} ms · image {n}",
        "{fps} صورة/ث · الرد خلال {ms} مللي ثانية · الصورة {n}",
    ],
    [
        "Start a camera: the kiosk's own (kiosk), a clip (video:FILE) or a folder of photos (file:DIR). Each frame goes to the server's /v1/frame and comes back with what the engine saw.",
        "Démarrez une caméra : celle de la borne (kiosk), une vidéo (video:FICHIER) ou un dossier de photos (file:DOSSIER). Chaque image part vers /v1/frame et revient avec ce que le moteur y a vu.",
        "شغّل كاميرا: كاميرا الكشك (kiosk) أو مقطعًا (video:FILE) أو مجلد صور (file:DIR). تُرسل كل صورة إلى ‎/v1/frame‎ وتعود بما رآه المحرك.",
    ],
    [
        "No analysis: {error}",
        "Pas d'analyse : {error}",
        "لا تحليل: {error}",
    ],
    ["{n} face(s)", "{n} visage(s)", "{n} وجه"],
    [
        "No face in this frame.",
        "Aucun visage dans cette image.",
        "لا وجه في هذه الصورة.",
    ],
    [
        "Would refuse: {code}",
        "Serait refusée : {code}",
        "سيُرفض: {code}",
    ],
    [
        "Match: {id} (score {score} ≥ {threshold})",
        "Reconnu : {id} (score {score} ≥ {threshold})",
        "تطابق: {id} (الدرجة {score} ≥ {threshold})",
    ],
    [
        "No match (best {score} < {threshold})",
        "Aucune correspondance (meilleur {score} < {threshold})",
        "لا تطابق (الأفضل {score} < {threshold})",
    ],
    [
        "Liveness {p} ({preset}): {verdict}",
        "Vivacité {p} ({preset}) : {verdict}",
        "الحيوية {p} ({preset}): {verdict}",
    ],
    ["live", "vivant", "حي"],
    ["not live", "non vivant", "غير حي"],
    ["Quality: passes", "Qualité : conforme", "الجودة: مقبولة"],
    [
        "Quality: {failure}",
        "Qualité : {failure}",
        "الجودة: {failure}",
    ],
    ["nobody", "inconnu", "مجهول"],
    // calibration
    [
        "Report or dataset",
        "Rapport ou jeu de données",
        "تقرير أو مجموعة بيانات",
    ],
    ["Open report", "Ouvrir le rapport", "فتح التقرير"],
    ["Run evaluation", "Lancer l'évaluation", "تشغيل التقييم"],
    ["working…", "en cours…", "جارٍ العمل…"],
    [
        "Open a report saved from `faceid --json eval DIR > eval.json`, or run an evaluation over a dataset folder.",
        "Ouvrez un rapport enregistré par `faceid --json eval DOSSIER > eval.json`, ou lancez une évaluation sur un dossier de données.",
        "افتح تقريرًا محفوظًا من ‎`faceid --json eval DIR > eval.json`‎ أو شغّل تقييمًا على مجلد بيانات.",
    ],
    [
        "This report has no verification pairs.",
        "Ce rapport n'a pas de paires de vérification.",
        "لا يحتوي هذا التقرير على أزواج تحقق.",
    ],
    [
        "{pairs} pairs ({genuine} genuine, {impostor} impostor scored; {failed} without a face) · EER {eer}",
        "{pairs} paires ({genuine} authentiques, {impostor} imposteurs notées ; {failed} sans visage) · EER {eer}",
        "{pairs} زوج ({genuine} حقيقي و{impostor} منتحل؛ {failed} بلا وجه) · EER {eer}",
    ],
    [
        "Score distributions (calibrated score)",
        "Distribution des scores (score calibré)",
        "توزيع الدرجات (درجة معايرة)",
    ],
    ["genuine", "authentiques", "حقيقي"],
    ["impostor", "imposteurs", "منتحل"],
    ["calibrated score", "score calibré", "الدرجة المعايرة"],
    ["share of pairs", "part des paires", "نسبة الأزواج"],
    [
        "DET curve (log-log)",
        "Courbe DET (log-log)",
        "منحنى DET (لوغاريتمي)",
    ],
    [
        "false accept rate",
        "taux de fausse acceptation",
        "معدل القبول الخاطئ",
    ],
    [
        "false reject rate",
        "taux de faux rejet",
        "معدل الرفض الخاطئ",
    ],
    [
        "Threshold presets",
        "Seuils prédéfinis",
        "العتبات المحددة مسبقًا",
    ],
    ["preset", "préréglage", "الإعداد"],
    ["score", "score", "الدرجة"],
    ["observed FAR", "FAR observé", "FAR المرصود"],
    [
        "Liveness presets",
        "Préréglages de vivacité",
        "إعدادات الحيوية",
    ],
    ["threshold", "seuil", "العتبة"],
    [
        "Presentation attacks (sequences)",
        "Attaques par présentation (séquences)",
        "هجمات العرض (تسلسلات)",
    ],
    [
        "APCER per attack species; {n} simulated planar attacks",
        "APCER par type d'attaque ; {n} attaques planes simulées",
        "APCER لكل نوع هجوم؛ {n} هجمات مستوية محاكاة",
    ],
    ["attack", "attaque", "الهجوم"],
    ["planarity alone", "planéité seule", "الاستواء وحده"],
    [
        "BPCER (bona fide)",
        "BPCER (authentiques)",
        "BPCER (الحقيقيون)",
    ],
    [
        "This report has no live/spoof images.",
        "Ce rapport n'a pas d'images vivantes ou usurpées.",
        "لا يحتوي هذا التقرير على صور حية أو مزيفة.",
    ],
    // health
    [
        "Waiting for the first health poll…",
        "En attente du premier relevé…",
        "في انتظار أول قراءة…",
    ],
    ["Server", "Serveur", "الخادم"],
    ["Version", "Version", "الإصدار"],
    ["Model", "Modèle", "النموذج"],
    ["Gallery size", "Taille de la galerie", "حجم المعرض"],
    [
        "1:N index memory",
        "Mémoire de l'index 1:N",
        "ذاكرة فهرس البحث",
    ],
    ["Engine queue", "File du moteur", "طابور المحرك"],
    ["{n} waiting", "{n} en attente", "{n} في الانتظار"],
    [
        "Requests (last 2 s)",
        "Requêtes (2 dernières s)",
        "الطلبات (آخر 2 ث)",
    ],
    [
        "Measuring: rates appear after the second poll.",
        "Mesure en cours : les débits apparaissent au second relevé.",
        "جارٍ القياس: تظهر المعدلات بعد القراءة الثانية.",
    ],
    ["route", "route", "المسار"],
    ["requests/s", "requêtes/s", "طلب/ث"],
    ["mean latency", "latence moyenne", "متوسط زمن الاستجابة"],
    ["errors/s", "erreurs/s", "أخطاء/ث"],
    ["since start", "depuis le démarrage", "منذ البدء"],
    [
        "Kiosks syncing with this server",
        "Bornes synchronisées avec ce serveur",
        "الأكشاك المتزامنة مع هذا الخادم",
    ],
    [
        "No kiosk has a device token.",
        "Aucune borne n'a de jeton.",
        "لا يملك أي كشك رمز جهاز.",
    ],
    ["kiosk", "borne", "الكشك"],
    ["last push", "dernier envoi", "آخر إرسال"],
    ["last pull", "dernière réception", "آخر استلام"],
    ["behind", "retard", "التأخر"],
    ["pushed", "envoyés", "المُرسل"],
    ["conflicts", "conflits", "التعارضات"],
    ["up to date", "à jour", "محدّث"],
    ["{n} changes", "{n} changements", "{n} تغيير"],
    ["not seen", "jamais vue", "لم يُرَ"],
    [
        "Per-kiosk sync state needs an admin key.",
        "L'état de synchronisation des bornes demande une clé admin.",
        "حالة مزامنة الأكشاك تتطلب مفتاح مسؤول.",
    ],
    [
        "This kiosk's sync",
        "Synchronisation de cette borne",
        "مزامنة هذا الكشك",
    ],
    ["Waiting to push", "En attente d'envoi", "بانتظار الإرسال"],
    ["{n} events", "{n} événements", "{n} حدث"],
    ["Last push", "Dernier envoi", "آخر إرسال"],
    ["Last pull", "Dernière réception", "آخر استلام"],
    ["Conflicts", "Conflits", "التعارضات"],
    ["Last error", "Dernière erreur", "آخر خطأ"],
    ["none", "aucune", "لا يوجد"],
    [
        "Not a kiosk: this is a central server (its kiosks are listed above).",
        "Pas une borne : c'est un serveur central (ses bornes sont listées ci-dessus).",
        "ليس كشكًا: هذا خادم مركزي (أكشاكه مدرجة أعلاه).",
    ],
    ["never", "jamais", "أبدًا"],
    ["{n} s ago", "il y a {n} s", "منذ {n} ث"],
    ["{n} min ago", "il y a {n} min", "منذ {n} د"],
    ["{n} h ago", "il y a {n} h", "منذ {n} س"],
    ["{n} d ago", "il y a {n} j", "منذ {n} يوم"],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_translated_with_its_placeholders() {
        let placeholders = |text: &str| {
            let mut names: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
                .collect();
            names.sort();
            names
        };
        for (i, row) in WORDS.iter().enumerate() {
            assert!(
                WORDS[..i].iter().all(|earlier| earlier[0] != row[0]),
                "{} twice",
                row[0]
            );
            for text in &row[1..] {
                assert!(!text.is_empty(), "{} has an empty translation", row[0]);
                assert_eq!(placeholders(text), placeholders(row[0]), "{text}");
            }
        }
    }

    #[test]
    fn right_to_left_runs_are_put_in_drawing_order() {
        // An Arabic line: words right to left, the number (left to right) at the far right.
        assert_eq!(visual("4 شخص", true), "شخص 4");
        assert_eq!(visual("حجم المعرض", true), "المعرض حجم");
        // Brackets mirror, the trailing ellipsis goes to the left end.
        assert_eq!(visual("حذف الشخص…", true), "…الشخص حذف");
        assert_eq!(visual("(مشفّرة)", true), "(مشفّرة)");
        // A name in Arabic inside a Latin line: only its words are reversed.
        assert_eq!(visual("Leïla ليلى بن علي", false), "Leïla علي بن ليلى");
        // A URL inside an Arabic line keeps its order.
        assert_eq!(
            visual("متصل بـ http://127.0.0.1:80", true),
            "http://127.0.0.1:80 بـ متصل"
        );
        assert!(matches!(visual("plain text", true), Cow::Borrowed(_)));
        assert_eq!(t(Language::Ar, "Gallery size"), "المعرض حجم");
        // Placeholders survive as left-to-right runs, then take their values.
        assert_eq!(t(Language::Ar, "{n} subjects"), "شخص {n}");
        assert_eq!(
            fill(t(Language::Ar, "{n} subjects"), &[("n", "4")]),
            "شخص 4"
        );
    }

    #[test]
    fn lookup_and_fill() {
        assert_eq!(t(Language::Fr, "Subjects"), "Personnes");
        assert_eq!(t(Language::Ar, "Cancel"), "إلغاء");
        assert_eq!(t(Language::Fr, "not in the table"), "not in the table");
        assert_eq!(
            fill(t(Language::Fr, "Erase {name}?"), &[("name", "Ada")]),
            "Effacer Ada ?"
        );
        assert_eq!(Language::parse("AR"), Some(Language::Ar));
        assert_eq!(Language::parse("de"), None);
    }
}
