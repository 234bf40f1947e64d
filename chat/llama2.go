package chat

// Llama2Prompt renders one user turn with Llama 2's chat format, without a
// template engine: "[INST] user [/INST]", the system prompt, when not
// empty, inside the turn's <<SYS>> block. llama2.c's run.c renders every
// turn so (its goldens pin it), and a multi-turn conversation is its turns
// one after another, each its own sequence (BOS first).
func Llama2Prompt(system, user string) string {
	if system != "" {
		return "[INST] <<SYS>>\n" + system + "\n<</SYS>>\n\n" + user + " [/INST]"
	}
	return "[INST] " + user + " [/INST]"
}
