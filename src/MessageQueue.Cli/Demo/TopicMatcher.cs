namespace MessageQueue.Cli.Demo;

/// <summary>
/// AMQP topic matching, written independently of the broker's router so that the demo's accounting
/// checks the broker instead of repeating it: words are separated by dots, <c>*</c> matches exactly
/// one word and <c>#</c> matches zero or more words.
/// </summary>
internal static class TopicMatcher
{
    /// <summary>Returns whether <paramref name="eventName"/> matches <paramref name="filter"/>.</summary>
    public static bool Matches(string filter, string eventName)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(eventName);
        return Matches(filter.Split('.'), 0, eventName.Split('.'), 0);
    }

    /// <summary>Returns whether any of <paramref name="filters"/> matches <paramref name="eventName"/>.</summary>
    public static bool MatchesAny(IEnumerable<string> filters, string eventName)
    {
        ArgumentNullException.ThrowIfNull(filters);
        return filters.Any(filter => Matches(filter, eventName));
    }

    // Plain backtracking: the demo's filters and events are a few words long, so clarity wins over the
    // broker's linear-time matcher.
    private static bool Matches(string[] filter, int f, string[] words, int w)
    {
        if (f == filter.Length)
        {
            return w == words.Length;
        }

        if (filter[f] == "#")
        {
            for (int skip = w; skip <= words.Length; skip++)
            {
                if (Matches(filter, f + 1, words, skip))
                {
                    return true;
                }
            }

            return false;
        }

        return w < words.Length
            && (filter[f] == "*" || string.Equals(filter[f], words[w], StringComparison.Ordinal))
            && Matches(filter, f + 1, words, w + 1);
    }
}
