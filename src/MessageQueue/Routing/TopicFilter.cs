namespace MessageQueue;

/// <summary>
/// A parsed event filter with AMQP topic semantics: <c>*</c> matches exactly one word and <c>#</c>
/// matches zero or more words. Filters are parsed once, at subscribe time. Routing a publish goes through a queue's
/// <see cref="SubscriptionTrie{T}"/> built from these words; <see cref="Matches"/> tests one name against one filter
/// (recovery, replay filters, retention), without allocating.
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

    /// <summary>The filter's words, with runs of <c>#</c> collapsed into one.</summary>
    public string[] Words => _words;

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
        // The words of the name, as ranges: a valid name has at most MaxEventLength / 2 + 1 of them.
        int count = eventName.AsSpan().Count('.') + 1;
        Span<Range> words = count < 128 ? stackalloc Range[count] : new Range[count];
        eventName.AsSpan().Split(words, '.');

        // reachable[j]: the filter words seen so far can match exactly the first j event words.
        // Dynamic programming over (filter word, event word) keeps this O(filter × event) even with many '#'.
        Span<bool> reachable = count < 128 ? stackalloc bool[count + 1] : new bool[count + 1];
        Span<bool> next = count < 128 ? stackalloc bool[count + 1] : new bool[count + 1];
        reachable.Clear();
        reachable[0] = true;

        foreach (string pattern in _words)
        {
            next.Clear();
            if (pattern == "#")
            {
                // Zero or more words: once j is reachable, every later position is too.
                bool any = false;
                for (int j = 0; j <= count; j++)
                {
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            else
            {
                for (int j = 0; j < count; j++)
                {
                    if (reachable[j] && (pattern == "*" || pattern.AsSpan().SequenceEqual(eventName.AsSpan()[words[j]])))
                    {
                        next[j + 1] = true;
                    }
                }
            }

            next.CopyTo(reachable);
        }

        return reachable[count];
    }

    public override string ToString() => Text;
}
