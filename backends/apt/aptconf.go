package apt

import (
	"fmt"
	"strings"
)

// token is one lexical element of apt's configuration syntax: a word, a
// quoted string, or one of "{", "}", ";".
type token struct {
	text   string
	quoted bool
	line   int
}

// lexAptConf splits apt configuration text into tokens, dropping comments
// ("//…", "/*…*/", and "#…" lines, which also covers #include and #clear).
func lexAptConf(data []byte, file string) ([]token, error) {
	var out []token
	s, line := string(data), 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//") || c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated /* comment", file, line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case c == '"':
			end := strings.IndexAny(s[i+1:], "\"\n")
			if end < 0 || s[i+1+end] != '"' {
				return nil, fmt.Errorf("%s:%d: unterminated string", file, line)
			}
			out = append(out, token{text: s[i+1 : i+1+end], quoted: true, line: line})
			i += end + 2
		case c == '{' || c == '}' || c == ';':
			out = append(out, token{text: string(c), line: line})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"", rune(s[j])) {
				j++
			}
			out = append(out, token{text: s[i:j], line: line})
			i = j
		}
	}
	return out, nil
}

// parseProxies reads apt configuration text (apt.conf syntax: "A::B
// "v";", "A { B "v"; };", comments) and stores its proxy settings in into,
// keyed "Acquire::http::Proxy" or "Acquire::https::Proxy::HOST". Other
// settings are ignored. file names the text in errors.
func parseProxies(data []byte, file string, into map[string]string) error {
	toks, err := lexAptConf(data, file)
	if err != nil {
		return err
	}
	punct := func(i int, p string) bool { return i < len(toks) && !toks[i].quoted && toks[i].text == p }
	var scope []string
	for i := 0; i < len(toks); {
		t := toks[i]
		bad := func(why string) error { return fmt.Errorf("%s:%d: malformed apt configuration: %s", file, t.line, why) }
		switch {
		case punct(i, ";"):
			i++
		case punct(i, "}"):
			if len(scope) == 0 {
				return bad("unbalanced }")
			}
			scope = scope[:len(scope)-1]
			i++
		case punct(i, "{"):
			return bad("{ without a name")
		case t.quoted && punct(i+1, ";"):
			i += 2 // a list item
		case punct(i+1, "{"):
			scope = append(scope, t.text)
			i += 2
		case punct(i+1, ";"):
			i += 2 // a name without a value
		case i+1 < len(toks) && !punct(i+1, "}") && punct(i+2, ";"):
			key := strings.Join(append(append([]string{}, scope...), t.text), "::")
			if k, ok := proxyKey(key); ok {
				if strings.ContainsAny(toks[i+1].text, "\"\\") {
					return bad(fmt.Sprintf("%s: quote or backslash in the value", key))
				}
				into[k] = toks[i+1].text
			}
			i += 3
		default:
			return bad(fmt.Sprintf("unexpected %q (want NAME \"VALUE\"; or NAME { … };)", t.text))
		}
	}
	if len(scope) > 0 {
		return fmt.Errorf("%s: malformed apt configuration: %s { is never closed", file, strings.Join(scope, "::"))
	}
	return nil
}

// proxyKey returns the canonical spelling of key if it is a proxy setting
// (apt's names are case-insensitive; a host name keeps its spelling).
func proxyKey(key string) (string, bool) {
	p := strings.Split(key, "::")
	if len(p) < 3 || len(p) > 4 || !strings.EqualFold(p[0], "Acquire") || !strings.EqualFold(p[2], "Proxy") {
		return "", false
	}
	proto := strings.ToLower(p[1])
	if proto != "http" && proto != "https" {
		return "", false
	}
	k := "Acquire::" + proto + "::Proxy"
	if len(p) == 4 {
		k += "::" + p[3]
	}
	return k, true
}
