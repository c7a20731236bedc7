namespace MessageQueue;

/// <summary>
/// A parsed event filter with AMQP topic semantics: <c>*</c> matches exactly one word and <c>#</c>
/// matches zero or more words. Filters are parsed once, at subscribe time; matching only runs when a
/// queue computes the route for an event name it has not seen yet, and the result is cached.
/// </summary>
internal sealed class TopicFilter
{
    private readonly string[] _words;

    private TopicFilter(string text, string[] words)
    {
        Text = text;
        _words = words;
    }

    public string Text { get; }

    /// <summary>Parses a filter that <see cref="Names.ValidateFilter"/> accepted.</summary>
    public static TopicFilter Parse(string text)
    {
        // "#.#" matches exactly what "#" matches; collapsing runs keeps matching linear.
        var words = new List<string>();
        foreach (string word in text.Split('.'))
        {
            if (word == "#" && words.Count > 0 && words[^1] == "#")
            {
                continue;
            }

            words.Add(word);
        }

        return new TopicFilter(text, [.. words]);
    }

    public bool Matches(string eventName)
    {
        string[] words = eventName.Split('.');

        // reachable[j]: the filter words seen so far can match exactly the first j event words.
        // Dynamic programming over (filter word, event word) keeps this O(filter × event) even with many '#'.
        Span<bool> reachable = words.Length < 128 ? stackalloc bool[words.Length + 1] : new bool[words.Length + 1];
        Span<bool> next = words.Length < 128 ? stackalloc bool[words.Length + 1] : new bool[words.Length + 1];
        reachable.Clear();
        reachable[0] = true;

        foreach (string pattern in _words)
        {
            next.Clear();
            if (pattern == "#")
            {
                // Zero or more words: once j is reachable, every later position is too.
                bool any = false;
                for (int j = 0; j <= words.Length; j++)
                {
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            else
            {
                for (int j = 0; j < words.Length; j++)
                {
                    if (reachable[j] && (pattern == "*" || string.Equals(pattern, words[j], StringComparison.Ordinal)))
                    {
                        next[j + 1] = true;
                    }
                }
            }

            next.CopyTo(reachable);
        }

        return reachable[words.Length];
    }

    public override string ToString() => Text;
}
