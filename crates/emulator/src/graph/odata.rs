//! OData query options ($select, $top, $filter, $count, $skiptoken) and paged answers.
