package chat_test

import (
	"fmt"

	"github.com/llama2-go/llama2/chat"
)

func Example() {
	// A GGUF file's tokenizer.chat_template, or chat.Llama2 when it has none.
	tmpl, err := chat.Parse(chat.Llama2)
	if err != nil {
		fmt.Println(err)
		return
	}
	prompt, err := tmpl.Render([]chat.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Name a prime."},
	}, chat.Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", prompt)

	// Templates enforce their own rules with raise_exception.
	_, err = tmpl.Render([]chat.Message{{Role: "assistant", Content: "Hi"}}, chat.Options{})
	fmt.Println(err)
	// Output:
	// "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nName a prime. [/INST]"
	// chat: template raised an exception: Conversation roles must alternate user/assistant/user/assistant/...
}
